//! Transactions sent to nf_tables over netlink directly, without the `nft` binary.
//!
//! A full sync of 10,000 services is about 40,000 commands. `nft -f` spends half of its
//! second parsing and evaluating them before the kernel sees the first one; here the
//! same text is translated to nf_tables messages in a few tens of milliseconds and sent as
//! one batch, which the kernel applies atomically, exactly as it applies nft's.
//!
//! The input is the text the proxy renders ([`crate::rules`]), not nft's whole language:
//! the commands and statements listed in [`encode`]'s parser, each producing the same
//! expressions that nft 1.0 produces for it (so `nft list table` shows the same ruleset).
//! Anything else is refused with [`Unsupported`], and the caller runs `nft` instead.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

/// A transaction the translator does not handle (a bug in the renderer or the translator:
/// the caller falls back to `nft`).
#[derive(Debug)]
pub struct Unsupported {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line + 1, self.reason)
    }
}

/// One netlink batch and, for each message's sequence number, the script line it came from.
pub struct Batch {
    bytes: Vec<u8>,
    lines: Vec<usize>,
}

/// Which command of the batch failed, and how.
#[derive(Debug)]
pub struct Failure {
    /// The script line (0-based), when the kernel named the message.
    pub line: Option<usize>,
    pub error: io::Error,
}

// Netlink and nf_tables constants (linux/netlink.h, linux/netfilter/nfnetlink.h,
// linux/netfilter/nf_tables.h).
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NETLINK_CAP_ACK: libc::c_int = 10;

const NEWTABLE: u16 = 0;
const DELTABLE: u16 = 2;
const NEWCHAIN: u16 = 3;
const DELCHAIN: u16 = 5;
const NEWRULE: u16 = 6;
const DELRULE: u16 = 8;
const NEWSET: u16 = 9;
const DELSET: u16 = 11;
const NEWSETELEM: u16 = 12;
const DELSETELEM: u16 = 14;

const NFPROTO_IPV4: u8 = 2;

/// Verdict codes (NF_DROP, NF_ACCEPT, NFT_JUMP, NFT_GOTO, NFT_RETURN).
const DROP: i32 = 0;
const ACCEPT: i32 = 1;
const JUMP: i32 = -3;
const GOTO: i32 = -4;
const RETURN: i32 = -5;

/// nft's data type numbers, which it reads back from a set's key type to print elements.
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_INET_PROTO: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;

const SET_MAP: u32 = 0x8;
const SET_TIMEOUT: u32 = 0x10;
const SET_EVAL: u32 = 0x20;

/// Registers: the verdict, then 16-byte register 1 (= 4-byte registers 8 to 11) and 2.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

/// Translates a transaction to one netlink batch.
pub fn encode(script: &str) -> Result<Batch, Unsupported> {
    let mut enc = Encoder::default();
    enc.begin_batch();
    for (line_no, line) in script.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let tokens = tokenize(line);
        let mut p = Parser {
            tokens: &tokens,
            pos: 0,
        };
        enc.command(&mut p, line_no).map_err(|reason| Unsupported {
            line: line_no,
            reason: format!("{reason} in `{}`", excerpt(line)),
        })?;
        if enc.overflow {
            return Err(Unsupported {
                line: line_no,
                reason: "an attribute longer than 64 KiB".into(),
            });
        }
    }
    enc.end_batch();
    Ok(Batch {
        bytes: enc.buf,
        lines: enc.lines,
    })
}

/// The start of a long line, for messages.
pub fn excerpt(line: &str) -> &str {
    match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Sends a batch and reports the commands the kernel refused (the batch is then applied not
/// at all).
pub fn send(batch: &Batch) -> Result<(), Vec<Failure>> {
    let one = |error: io::Error| vec![Failure { line: None, error }];
    let socket = open().map_err(one)?;
    socket.send(&batch.bytes).map_err(one)?;
    // The kernel handles the batch inside the send: its errors are queued already.
    let errors = socket.errors().map_err(one)?;
    if errors.is_empty() {
        return Ok(());
    }
    Err(errors
        .into_iter()
        .map(|(seq, errno)| Failure {
            line: usize::try_from(seq)
                .ok()
                .and_then(|s| s.checked_sub(1))
                .and_then(|i| batch.lines.get(i).copied()),
            error: io::Error::from_raw_os_error(errno),
        })
        .collect())
}

struct Socket(OwnedFd);

#[allow(unsafe_code)] // socket(2) and taking ownership of its descriptor
fn open() -> io::Result<Socket> {
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor socket(2) just returned, owned by nothing else.
    let socket = Socket(unsafe { OwnedFd::from_raw_fd(fd) });
    // Errors echo only the failing message's header, not the whole message.
    socket.set_option(libc::SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
    Ok(socket)
}

// The system calls on the socket, each with the buffers it reads or writes borrowed for
// its duration.
#[allow(unsafe_code)]
impl Socket {
    fn set_option(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: `value` outlives the call and its size is passed along.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                level,
                name,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        // The whole batch must go in one message, at most the send buffer: raise it past
        // the usual default (wmem_default, 208 KiB) when needed (root only, as is
        // changing nf_tables).
        let size = libc::c_int::try_from(bytes.len() + 65536)
            .map_err(|_| io::Error::other("netlink batch too large"))?;
        if size > 200_000 {
            self.set_option(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size)?;
        }
        // SAFETY: an all-zero sockaddr_nl is valid; the family is set below.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `bytes` and `kernel` are valid for the lengths passed.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                std::ptr::from_ref(&kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(sent).ok() != Some(bytes.len()) {
            return Err(io::Error::other("netlink batch sent in part"));
        }
        Ok(())
    }

    /// The error messages queued for us: (sequence number, errno).
    fn errors(&self) -> io::Result<Vec<(u32, i32)>> {
        let mut errors = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::WouldBlock {
                    return Ok(errors);
                }
                return Err(err);
            }
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Ok(errors);
            }
            let mut off = 0;
            while off + 16 <= n {
                let len = u32_at(&buf, off) as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > n {
                    break;
                }
                // struct nlmsgerr: int error, then the original header (its seq at +8).
                if kind == NLMSG_ERROR && len >= 16 + 20 {
                    let errno = -(u32_at(&buf, off + 16) as i32);
                    let seq = u32_at(&buf, off + 20 + 8);
                    if errno != 0 {
                        errors.push((seq, errno));
                    }
                }
                off += (len + 3) & !3;
            }
        }
    }
}

fn u32_at(buf: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// Splits a line into words and the punctuation `{ } ; ,` (each its own token).
fn tokenize(line: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let punct = matches!(c, '{' | '}' | ';' | ',');
        if c.is_whitespace() || punct {
            if let Some(s) = start.take() {
                tokens.push(&line[s..i]);
            }
            if punct {
                tokens.push(&line[i..i + 1]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        tokens.push(&line[s..]);
    }
    tokens
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    pos: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<&'a str> {
        self.tokens.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Res<&'a str> {
        let t = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, want: &str) -> Res<()> {
        let got = self.next()?;
        if got != want {
            return Err(format!("expected `{want}`, found `{got}`"));
        }
        Ok(())
    }

    fn eat(&mut self, want: &str) -> bool {
        if self.peek() == Some(want) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn done(&self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected `{t}`")),
        }
    }
}

/// A value loaded into a register, and how its comparisons are written.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Selector {
    IpSaddr,
    IpDaddr,
    L4Proto,
    ThDport,
    Mark,
    CtState,
    CtStatus,
    Fib { daddr: bool },
    Numgen { modulus: u32 },
}

impl Selector {
    /// Bytes in the register.
    fn len(self) -> u32 {
        match self {
            Selector::L4Proto => 1,
            Selector::ThDport => 2,
            _ => 4,
        }
    }
}

/// Builds the batch's bytes.
#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
    seq: u32,
    /// Script line of each message after the batch start (index = seq - 1).
    lines: Vec<usize>,
    /// IDs of the sets created in this batch (referred to by ID as well as by name).
    set_ids: HashMap<String, u32>,
    /// An attribute outgrew its 16-bit length.
    overflow: bool,
}

/// Bytes of elements after which a list continues in a new message (one element is at most
/// a few hundred bytes; the limit of an attribute is 65,535).
const ELEMENTS_NEST_MAX: usize = 60_000;

impl Encoder {
    fn header(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version 0, resource id (big endian).
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.seq += 1;
        start
    }

    fn finish(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn begin_batch(&mut self) {
        let start = self.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.finish(start);
    }

    fn end_batch(&mut self) {
        let start = self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
        self.finish(start);
    }

    fn message(&mut self, kind: u16, flags: u16, line: usize) -> usize {
        self.lines.push(line);
        self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | flags,
            NFPROTO_IPV4,
            0,
        )
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        self.attr_header(kind, data.len());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    /// An attribute's header, for `payload` bytes of data.
    fn attr_header(&mut self, kind: u16, payload: usize) {
        let len = u16::try_from(4 + payload).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A NUL-terminated string.
    fn attr_str(&mut self, kind: u16, s: &str) {
        self.attr_header(kind, s.len() + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    fn nest(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    fn end_nest(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` inside attribute `kind`.
    fn data_value(&mut self, kind: u16, value: &[u8]) {
        let n = self.nest(kind);
        self.attr(1, value);
        self.end_nest(n);
    }

    /// `NFTA_DATA_VERDICT` inside attribute `kind`.
    fn data_verdict(&mut self, kind: u16, code: i32, chain: Option<&str>) {
        let n = self.nest(kind);
        let v = self.nest(2);
        self.attr(1, &code.to_be_bytes());
        if let Some(chain) = chain {
            self.attr_str(2, chain);
        }
        self.end_nest(v);
        self.end_nest(n);
    }

    /// One command line.
    fn command(&mut self, p: &mut Parser<'_>, line: usize) -> Res<()> {
        let verb = p.next()?;
        let object = p.next()?;
        p.expect("ip")?;
        let table = p.next()?;
        match (verb, object) {
            ("add", "table") => {
                let m = self.message(NEWTABLE, 0, line);
                self.attr_str(1, table);
                self.attr_u32(2, 0);
                self.finish(m);
            }
            ("delete", "table") => {
                let m = self.message(DELTABLE, 0, line);
                self.attr_str(1, table);
                self.finish(m);
            }
            ("add", "chain") => self.add_chain(p, line, table)?,
            ("flush" | "delete", "chain") => {
                let name = p.next()?;
                let (kind, name_attr) = if verb == "flush" {
                    (DELRULE, 2)
                } else {
                    (DELCHAIN, 3)
                };
                let m = self.message(kind, 0, line);
                self.attr_str(1, table);
                self.attr_str(name_attr, name);
                self.finish(m);
            }
            ("add", "set" | "map") => self.add_set(p, line, table)?,
            ("flush", "set" | "map") => {
                let name = p.next()?;
                let m = self.message(DELSETELEM, 0, line);
                self.attr_str(1, table);
                self.attr_str(2, name);
                self.finish(m);
            }
            ("delete", "set" | "map") => {
                let name = p.next()?;
                let m = self.message(DELSET, 0, line);
                self.attr_str(1, table);
                self.attr_str(2, name);
                self.finish(m);
            }
            ("add" | "delete", "element") => self.elements(p, line, table, verb == "add")?,
            ("add", "rule") => self.add_rule(p, line, table)?,
            _ => return Err(format!("unknown command `{verb} {object}`")),
        }
        p.done()
    }

    fn add_chain(&mut self, p: &mut Parser<'_>, line: usize, table: &str) -> Res<()> {
        let name = p.next()?;
        let m = self.message(NEWCHAIN, NLM_F_CREATE, line);
        self.attr_str(1, table);
        self.attr_str(3, name);
        if p.eat("{") {
            // { type KIND hook HOOK priority N; policy accept; }
            p.expect("type")?;
            let kind = p.next()?;
            p.expect("hook")?;
            let hook = match p.next()? {
                "prerouting" => 0u32,
                "input" => 1,
                "forward" => 2,
                "output" => 3,
                "postrouting" => 4,
                other => return Err(format!("unknown hook `{other}`")),
            };
            p.expect("priority")?;
            let priority: i32 = p.next()?.parse().map_err(|_| "bad priority")?;
            p.expect(";")?;
            p.expect("policy")?;
            p.expect("accept")?;
            p.expect(";")?;
            p.expect("}")?;
            self.attr_str(7, kind);
            self.attr_u32(5, ACCEPT as u32);
            let h = self.nest(4);
            self.attr_u32(1, hook);
            self.attr(2, &priority.to_be_bytes());
            self.end_nest(h);
        }
        self.finish(m);
        Ok(())
    }

    /// `add set|map ip T NAME { type A . B [: verdict]; [flags dynamic,timeout;] [timeout Ns;] }`
    fn add_set(&mut self, p: &mut Parser<'_>, line: usize, table: &str) -> Res<()> {
        let name = p.next()?;
        p.expect("{")?;
        p.expect("type")?;
        let mut key_type = 0u32;
        let mut key_len = 0u32;
        loop {
            let t = match p.next()? {
                "ipv4_addr" => TYPE_IPV4_ADDR,
                "inet_proto" => TYPE_INET_PROTO,
                "inet_service" => TYPE_INET_SERVICE,
                other => return Err(format!("unknown type `{other}`")),
            };
            key_type = (key_type << 6) | t;
            key_len += 4;
            if !p.eat(".") {
                break;
            }
        }
        let mut flags = 0u32;
        if p.eat(":") {
            p.expect("verdict")?;
            flags |= SET_MAP;
        }
        p.expect(";")?;
        let mut timeout_ms: Option<u64> = None;
        while !p.eat("}") {
            match p.next()? {
                "flags" => loop {
                    flags |= match p.next()? {
                        "dynamic" => SET_EVAL,
                        "timeout" => SET_TIMEOUT,
                        other => return Err(format!("unknown set flag `{other}`")),
                    };
                    if !p.eat(",") {
                        break;
                    }
                },
                "timeout" => {
                    let ms = p
                        .next()?
                        .strip_suffix('s')
                        .and_then(|s| s.parse::<u64>().ok())
                        .and_then(|s| s.checked_mul(1000))
                        .ok_or("bad timeout")?;
                    timeout_ms = Some(ms);
                }
                other => return Err(format!("unknown set property `{other}`")),
            }
            p.expect(";")?;
        }
        let id = self.set_ids.len() as u32 + 1;
        self.set_ids.insert(name.to_owned(), id);
        let m = self.message(NEWSET, NLM_F_CREATE, line);
        self.attr_str(1, table);
        self.attr_str(2, name);
        self.attr_u32(3, flags);
        self.attr_u32(4, key_type);
        self.attr_u32(5, key_len);
        if flags & SET_MAP != 0 {
            self.attr_u32(6, NFT_DATA_VERDICT);
            self.attr_u32(7, 0);
        }
        self.attr_u32(10, id);
        if let Some(ms) = timeout_ms {
            self.attr(11, &ms.to_be_bytes());
        }
        self.finish(m);
        Ok(())
    }

    /// `add|delete element ip T NAME { K . K [: VERDICT], ... }`
    fn elements(&mut self, p: &mut Parser<'_>, line: usize, table: &str, add: bool) -> Res<()> {
        let name = p.next()?;
        p.expect("{")?;
        let (kind, flags) = if add {
            (NEWSETELEM, NLM_F_CREATE)
        } else {
            (DELSETELEM, 0)
        };
        let id = self.set_ids.get(name).copied();
        let start = |enc: &mut Encoder| {
            let m = enc.message(kind, flags, line);
            enc.attr_str(1, table);
            enc.attr_str(2, name);
            if let Some(id) = id {
                enc.attr_u32(4, id);
            }
            (m, enc.nest(3))
        };
        let (mut m, mut list) = start(self);
        loop {
            // An attribute's length is 16 bits: long lists go in several messages, as
            // libnftnl splits them.
            if self.buf.len() - list > ELEMENTS_NEST_MAX {
                self.end_nest(list);
                self.finish(m);
                (m, list) = start(self);
            }
            let elem = self.nest(1);
            let mut key = Vec::with_capacity(12);
            loop {
                let field = p.next()?;
                key.extend_from_slice(&key_field(field)?);
                if !p.eat(".") {
                    break;
                }
            }
            self.data_value(1, &key);
            if p.eat(":") {
                let (code, chain) = verdict(p)?;
                self.data_verdict(2, code, chain);
            }
            self.end_nest(elem);
            if p.eat("}") {
                break;
            }
            p.expect(",")?;
        }
        self.end_nest(list);
        self.finish(m);
        Ok(())
    }

    fn add_rule(&mut self, p: &mut Parser<'_>, line: usize, table: &str) -> Res<()> {
        let chain = p.next()?;
        let m = self.message(NEWRULE, NLM_F_CREATE | NLM_F_APPEND, line);
        self.attr_str(1, table);
        self.attr_str(2, chain);
        let list = self.nest(4);
        while let Some(tok) = p.peek() {
            match tok {
                "meta" if p.peek_at(1) == Some("mark") && p.peek_at(2) == Some("set") => {
                    // meta mark set meta mark (| or ^) VALUE
                    for want in ["meta", "mark", "set", "meta", "mark"] {
                        p.expect(want)?;
                    }
                    let op = p.next()?;
                    let value = number(p.next()?)?;
                    let (mask, xor) = match op {
                        "|" => (!value, value),
                        "^" => (u32::MAX, value),
                        other => return Err(format!("unknown mark operation `{other}`")),
                    };
                    self.meta_load(3, REG_1);
                    self.bitwise(REG_1, &mask.to_ne_bytes(), &xor.to_ne_bytes());
                    self.expr("meta", |e| {
                        e.attr_u32(2, 3);
                        e.attr_u32(3, REG_1);
                    });
                }
                "ip" | "th" | "meta" | "ct" | "fib" | "numgen" => self.relational(p)?,
                "update" => {
                    // update @SET { ip saddr }
                    p.next()?;
                    let set = set_ref(p.next()?)?;
                    for want in ["{", "ip", "saddr", "}"] {
                        p.expect(want)?;
                    }
                    self.load(Selector::IpSaddr, REG_1, 4);
                    let id = self.set_ids.get(set).copied();
                    self.expr("dynset", |e| {
                        e.attr_u32(4, REG_1);
                        e.attr_u32(3, 1);
                        e.attr_str(1, set);
                        if let Some(id) = id {
                            e.attr_u32(2, id);
                        }
                    });
                }
                "dnat" => {
                    p.next()?;
                    p.expect("to")?;
                    let target = p.next()?;
                    let (ip, port) = target.split_once(':').ok_or("dnat without a port")?;
                    let ip: Ipv4Addr = ip.parse().map_err(|_| "bad dnat address")?;
                    let port: u16 = port.parse().map_err(|_| "bad dnat port")?;
                    self.immediate_value(REG_1, &ip.octets());
                    self.immediate_value(REG_2, &port.to_be_bytes());
                    self.expr("nat", |e| {
                        e.attr_u32(1, 1); // NFT_NAT_DNAT
                        e.attr_u32(2, u32::from(NFPROTO_IPV4));
                        e.attr_u32(3, REG_1);
                        e.attr_u32(5, REG_2);
                        e.attr_u32(7, 0x2); // NF_NAT_RANGE_PROTO_SPECIFIED
                    });
                }
                "masquerade" => {
                    p.next()?;
                    let fully_random = p.eat("fully-random");
                    self.expr("masq", |e| {
                        if fully_random {
                            e.attr_u32(1, 0x10); // NF_NAT_RANGE_PROTO_RANDOM_FULLY
                        }
                    });
                }
                "reject" => {
                    p.next()?;
                    let (kind, code) = if p.eat("with") {
                        p.expect("tcp")?;
                        p.expect("reset")?;
                        (1u32, 0u8) // NFT_REJECT_TCP_RST
                    } else {
                        (0, 3) // NFT_REJECT_ICMP_UNREACH, port unreachable
                    };
                    self.expr("reject", |e| {
                        e.attr_u32(1, kind);
                        e.attr(2, &[code]);
                    });
                }
                "jump" | "goto" | "return" | "drop" | "accept" => {
                    let (code, chain) = verdict(p)?;
                    self.expr("immediate", |e| {
                        e.attr_u32(1, REG_VERDICT);
                        e.data_verdict(2, code, chain);
                    });
                }
                other => return Err(format!("unknown statement `{other}`")),
            }
        }
        self.end_nest(list);
        self.finish(m);
        Ok(())
    }

    /// `SELECTOR [. SELECTOR ...]` then `@set`, `vmap @map`, or a comparison.
    fn relational(&mut self, p: &mut Parser<'_>) -> Res<()> {
        let mut selectors = vec![selector(p)?];
        while p.eat(".") {
            selectors.push(selector(p)?);
        }
        let concat = |enc: &mut Encoder, selectors: &[Selector]| {
            let mut slot = 0;
            for s in selectors {
                // The first value goes to register 1, the rest to the 4-byte registers
                // after it (8 + slot), as nft allocates them.
                let reg = if slot == 0 { REG_1 } else { 8 + slot };
                enc.load(*s, reg, s.len());
                slot += s.len().div_ceil(4);
            }
        };
        let lookup = |enc: &mut Encoder, set: &str, verdict_map: bool| {
            let id = enc.set_ids.get(set).copied();
            enc.expr("lookup", |e| {
                e.attr_u32(2, REG_1);
                if verdict_map {
                    e.attr_u32(3, REG_VERDICT);
                }
                e.attr_str(1, set);
                if let Some(id) = id {
                    e.attr_u32(4, id);
                }
            });
        };
        let next = p.peek().ok_or("relational without a right-hand side")?;
        if let Some(set) = next.strip_prefix('@') {
            p.next()?;
            concat(self, &selectors);
            lookup(self, set, false);
            return Ok(());
        }
        if next == "vmap" {
            p.next()?;
            let set = set_ref(p.next()?)?;
            concat(self, &selectors);
            lookup(self, set, true);
            return Ok(());
        }
        let [sel] = selectors[..] else {
            return Err("comparison of a concatenation".into());
        };
        let mut negate = false;
        let mut mask: Option<u32> = None;
        if p.eat("!=") {
            negate = true;
        } else if p.eat("&") {
            mask = Some(number(p.next()?)?);
            p.expect("==")?;
        } else {
            p.eat("==");
        }
        let value = p.next()?;
        match sel {
            Selector::IpSaddr | Selector::IpDaddr => {
                let (addr, prefix) = match value.split_once('/') {
                    Some((a, n)) => (a, n.parse::<u32>().map_err(|_| "bad prefix")?),
                    None => (value, 32),
                };
                let addr: Ipv4Addr = addr.parse().map_err(|_| format!("bad address `{value}`"))?;
                // A /0 matches everything: nft writes no expression for it at all.
                if prefix == 0 || prefix > 32 {
                    return Err(format!("unsupported prefix in `{value}`"));
                }
                if prefix.is_multiple_of(8) {
                    // Whole bytes: load just those.
                    let n = (prefix / 8) as usize;
                    self.load(sel, REG_1, prefix / 8);
                    self.cmp(negate, &addr.octets()[..n]);
                } else {
                    let mask = u32::MAX << (32 - prefix);
                    let net = u32::from(addr) & mask;
                    self.load(sel, REG_1, 4);
                    self.bitwise(REG_1, &mask.to_be_bytes(), &[0; 4]);
                    self.cmp(negate, &net.to_be_bytes());
                }
            }
            Selector::L4Proto => {
                self.load(sel, REG_1, 1);
                self.cmp(negate, &[proto(value)?]);
            }
            Selector::Mark => {
                self.load(sel, REG_1, 4);
                if let Some(mask) = mask {
                    self.bitwise(REG_1, &mask.to_ne_bytes(), &[0; 4]);
                }
                self.cmp(negate, &number(value)?.to_ne_bytes());
            }
            Selector::Numgen { .. } => {
                let n: u32 = value.parse().map_err(|_| "bad numgen value")?;
                self.load(sel, REG_1, 4);
                self.cmp(negate, &n.to_ne_bytes());
            }
            Selector::Fib { .. } => {
                if value != "local" {
                    return Err(format!("unknown address type `{value}`"));
                }
                self.load(sel, REG_1, 4);
                self.cmp(negate, &2u32.to_ne_bytes()); // RTN_LOCAL
            }
            Selector::CtState | Selector::CtStatus => {
                // Flags: a match is any of the bits set.
                let bit: u32 = match (sel, value) {
                    (Selector::CtState, "new") => 1 << 3,
                    (Selector::CtStatus, "dnat") => 1 << 5,
                    _ => return Err(format!("unknown conntrack value `{value}`")),
                };
                if negate {
                    return Err("negated conntrack flags".into());
                }
                self.load(sel, REG_1, 4);
                self.bitwise(REG_1, &bit.to_ne_bytes(), &[0; 4]);
                self.cmp(true, &[0; 4]);
            }
            Selector::ThDport => {
                let port: u16 = value.parse().map_err(|_| "bad port")?;
                self.load(sel, REG_1, 2);
                self.cmp(negate, &port.to_be_bytes());
            }
        }
        Ok(())
    }

    /// Loads a selector (`len` bytes of it, for address prefixes) into `reg`.
    fn load(&mut self, sel: Selector, reg: u32, len: u32) {
        match sel {
            Selector::IpSaddr | Selector::IpDaddr | Selector::ThDport => {
                let (base, offset) = match sel {
                    Selector::IpSaddr => (1, 12),
                    Selector::IpDaddr => (1, 16),
                    _ => (2, 2),
                };
                self.expr("payload", |e| {
                    e.attr_u32(1, reg);
                    e.attr_u32(2, base);
                    e.attr_u32(3, offset);
                    e.attr_u32(4, len);
                });
            }
            Selector::L4Proto => self.meta_load(16, reg),
            Selector::Mark => self.meta_load(3, reg),
            Selector::CtState | Selector::CtStatus => {
                let key = if sel == Selector::CtStatus { 2 } else { 0 }; // NFT_CT_STATUS, NFT_CT_STATE
                self.expr("ct", |e| {
                    e.attr_u32(2, key);
                    e.attr_u32(1, reg);
                });
            }
            Selector::Fib { daddr } => self.expr("fib", |e| {
                e.attr_u32(3, if daddr { 2 } else { 1 });
                e.attr_u32(2, 3); // NFT_FIB_RESULT_ADDRTYPE
                e.attr_u32(1, reg);
            }),
            Selector::Numgen { modulus } => self.expr("numgen", |e| {
                e.attr_u32(1, reg);
                e.attr_u32(2, modulus);
                e.attr_u32(3, 1); // NFT_NG_RANDOM
                e.attr_u32(4, 0);
            }),
        }
    }

    fn meta_load(&mut self, key: u32, reg: u32) {
        self.expr("meta", |e| {
            e.attr_u32(2, key);
            e.attr_u32(1, reg);
        });
    }

    fn cmp(&mut self, negate: bool, value: &[u8]) {
        self.expr("cmp", |e| {
            e.attr_u32(1, REG_1);
            e.attr_u32(2, u32::from(negate));
            e.data_value(3, value);
        });
    }

    fn bitwise(&mut self, reg: u32, mask: &[u8], xor: &[u8]) {
        self.expr("bitwise", |e| {
            e.attr_u32(1, reg);
            e.attr_u32(2, reg);
            e.attr_u32(3, mask.len() as u32);
            e.data_value(4, mask);
            e.data_value(5, xor);
        });
    }

    fn immediate_value(&mut self, reg: u32, value: &[u8]) {
        self.expr("immediate", |e| {
            e.attr_u32(1, reg);
            e.data_value(2, value);
        });
    }

    /// One expression of a rule: its name and its attributes.
    fn expr(&mut self, name: &str, body: impl FnOnce(&mut Encoder)) {
        let elem = self.nest(1);
        self.attr_str(1, name);
        let data = self.nest(2);
        body(self);
        self.end_nest(data);
        self.end_nest(elem);
    }
}

fn selector(p: &mut Parser<'_>) -> Res<Selector> {
    let first = p.next()?;
    let second = p.next()?;
    Ok(match (first, second) {
        ("ip", "saddr") => Selector::IpSaddr,
        ("ip", "daddr") => Selector::IpDaddr,
        ("th", "dport") => Selector::ThDport,
        ("meta", "l4proto") => Selector::L4Proto,
        ("meta", "mark") => Selector::Mark,
        ("ct", "state") => Selector::CtState,
        ("ct", "status") => Selector::CtStatus,
        ("fib", addr @ ("saddr" | "daddr")) => {
            p.expect("type")?;
            Selector::Fib {
                daddr: addr == "daddr",
            }
        }
        ("numgen", "random") => {
            p.expect("mod")?;
            let modulus = p.next()?.parse().map_err(|_| "bad modulus")?;
            Selector::Numgen { modulus }
        }
        _ => return Err(format!("unknown selector `{first} {second}`")),
    })
}

fn set_ref(token: &str) -> Res<&str> {
    token
        .strip_prefix('@')
        .ok_or_else(|| format!("expected a set reference, found `{token}`"))
}

fn verdict<'a>(p: &mut Parser<'a>) -> Res<(i32, Option<&'a str>)> {
    Ok(match p.next()? {
        "jump" => (JUMP, Some(p.next()?)),
        "goto" => (GOTO, Some(p.next()?)),
        "return" => (RETURN, None),
        "drop" => (DROP, None),
        "accept" => (ACCEPT, None),
        other => return Err(format!("unknown verdict `{other}`")),
    })
}

fn proto(name: &str) -> Res<u8> {
    match name {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        "sctp" => Ok(132),
        other => Err(format!("unknown protocol `{other}`")),
    }
}

/// A number, hexadecimal with `0x`.
fn number(token: &str) -> Res<u32> {
    match token.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => token.parse().ok(),
    }
    .ok_or_else(|| format!("expected a number, found `{token}`"))
}

/// One field of a set element's key, padded to 4 bytes: our keys hold IPv4 addresses,
/// protocol names and ports only.
fn key_field(field: &str) -> Res<[u8; 4]> {
    if let Ok(ip) = field.parse::<Ipv4Addr>() {
        return Ok(ip.octets());
    }
    if let Ok(port) = field.parse::<u16>() {
        let [a, b] = port.to_be_bytes();
        return Ok([a, b, 0, 0]);
    }
    Ok([proto(field)?, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_split_punctuation_but_not_names() {
        assert_eq!(
            tokenize("add set ip t affinity-X-ns/a/tcp/p__10.0.0.1/80 { flags dynamic,timeout; }"),
            [
                "add",
                "set",
                "ip",
                "t",
                "affinity-X-ns/a/tcp/p__10.0.0.1/80",
                "{",
                "flags",
                "dynamic",
                ",",
                "timeout",
                ";",
                "}"
            ]
        );
    }

    #[test]
    fn text_outside_the_renderers_language_is_refused_with_its_line() {
        let err = encode("add table ip t\nadd rule ip t c tcp flags syn drop\n")
            .err()
            .unwrap();
        assert_eq!(err.line, 1);
        assert!(err.reason.contains("tcp flags"), "{}", err.reason);
        assert!(encode("add rule ip t c dnat to 10.0.0.1\n").is_err());
        assert!(encode("add rule ip t c ip saddr 10.0.0.0/33 drop\n").is_err());
        assert!(encode("add rule ip t c ip saddr 0.0.0.0/0 drop\n").is_err());
        // A name longer than an attribute can hold.
        let long = "c".repeat(70_000);
        assert!(encode(&format!("add chain ip t {long}\n")).is_err());
    }

    #[test]
    fn one_message_per_command_between_the_batch_markers() {
        let batch = encode("add table ip t\nadd chain ip t c\n\nadd rule ip t c drop\n").unwrap();
        // Script lines 0, 1 and 3 (the empty line sends nothing).
        assert_eq!(batch.lines, [0, 1, 3]);
        let kinds: Vec<u16> = {
            let mut off = 0;
            let mut kinds = Vec::new();
            while off < batch.bytes.len() {
                let len = u32_at(&batch.bytes, off) as usize;
                kinds.push(u16::from_ne_bytes([
                    batch.bytes[off + 4],
                    batch.bytes[off + 5],
                ]));
                off += len;
            }
            kinds
        };
        let nft = |m: u16| (NFNL_SUBSYS_NFTABLES << 8) | m;
        assert_eq!(
            kinds,
            [
                NFNL_MSG_BATCH_BEGIN,
                nft(NEWTABLE),
                nft(NEWCHAIN),
                nft(NEWRULE),
                NFNL_MSG_BATCH_END
            ]
        );
    }
}
