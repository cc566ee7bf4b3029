//! The SPDY/3.1 framing the API server needs to speak to a kubelet as a client of its
//! remote-command protocol (`v4.channel.k8s.io` over SPDY), as kube-apiserver's
//! StreamTranslatorProxy does when a client asked for WebSocket `v5.channel.k8s.io`.
//!
//! Only the client's side: stream creation (SYN_STREAM), data with FIN, PING echoes and
//! GOAWAY. Header blocks are zlib streams; ours use stored (uncompressed) deflate blocks
//! without a preset dictionary, each block sync-flushed, which zlib readers (Go's included,
//! which the kubelet's spdystream uses) accept. The server's header blocks (SYN_REPLY) are never needed, so
//! they are skipped without being inflated. Like spdystream, no flow control.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Frame types of control frames.
pub const SYN_STREAM: u16 = 1;
pub const SYN_REPLY: u16 = 2;
pub const RST_STREAM: u16 = 3;
pub const PING: u16 = 6;
pub const GOAWAY: u16 = 7;
/// `FLAG_FIN`, on data frames and SYN_STREAM.
pub const FLAG_FIN: u8 = 0x01;
/// The largest data frame this side writes.
pub const MAX_DATA: usize = 32 * 1024;
/// The largest frame this side reads (the 24-bit length allows 16 MiB).
const MAX_FRAME: usize = 1 << 24;

/// A frame read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    Control {
        kind: u16,
        flags: u8,
        payload: Vec<u8>,
    },
}

impl Frame {
    /// The stream id a control frame is about (SYN_REPLY, RST_STREAM), or the PING id.
    pub fn control_id(payload: &[u8]) -> Option<u32> {
        let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes) & 0x7fff_ffff)
    }
}

/// Reads one frame; `None` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; 8];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let flags = header[4];
    let length =
        usize::from(header[5]) << 16 | usize::from(header[6]) << 8 | usize::from(header[7]);
    if length > MAX_FRAME {
        return Err(std::io::Error::other("SPDY frame too large"));
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    if header[0] & 0x80 != 0 {
        let kind = u16::from_be_bytes([header[2], header[3]]);
        Ok(Some(Frame::Control {
            kind,
            flags,
            payload,
        }))
    } else {
        let stream = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) & 0x7fff_ffff;
        Ok(Some(Frame::Data {
            stream,
            fin: flags & FLAG_FIN != 0,
            data: payload,
        }))
    }
}

fn length_bytes(length: usize) -> [u8; 3] {
    let length = u32::try_from(length.min(MAX_FRAME - 1)).unwrap_or(0);
    let b = length.to_be_bytes();
    [b[1], b[2], b[3]]
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.extend_from_slice(&[0x80, 0x03]);
    frame.extend_from_slice(&kind.to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(&length_bytes(payload.len()));
    frame.extend_from_slice(payload);
    frame
}

/// A data frame (at most [`MAX_DATA`] bytes of `data`; callers split larger writes).
pub fn data(stream: u32, data: &[u8], fin: bool) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    frame.push(if fin { FLAG_FIN } else { 0 });
    frame.extend_from_slice(&length_bytes(data.len()));
    frame.extend_from_slice(data);
    frame
}

/// A PING frame with `id` (echoed back unchanged when the peer pinged).
pub fn ping(payload: &[u8]) -> Vec<u8> {
    control(PING, 0, payload)
}

/// GOAWAY: this side opens no more streams.
pub fn goaway(last_good: u32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8);
    payload.extend_from_slice(&(last_good & 0x7fff_ffff).to_be_bytes());
    payload.extend_from_slice(&0u32.to_be_bytes());
    control(GOAWAY, 0, &payload)
}

/// The writer of header blocks: one zlib stream across the connection.
#[derive(Default)]
pub struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    /// The compressed name/value block of `headers` (names lower-cased, as SPDY wants).
    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        let count = u32::try_from(headers.len()).unwrap_or(0);
        plain.extend_from_slice(&count.to_be_bytes());
        for (name, value) in headers {
            for part in [name.to_ascii_lowercase().as_bytes(), value.as_bytes()] {
                let len = u32::try_from(part.len()).unwrap_or(0);
                plain.extend_from_slice(&len.to_be_bytes());
                plain.extend_from_slice(part);
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 16);
        if !self.started {
            // zlib header: deflate, 32K window, no preset dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in plain.chunks(0xffff) {
            // A non-final stored block, byte-aligned: the sync-flushed form of the data.
            let len = u16::try_from(chunk.len()).unwrap_or(0);
            out.push(0x00);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // The sync-flush marker (an empty stored block) ends each block, as zlib's
        // Z_SYNC_FLUSH writes it: a reader that has consumed the data then reads this
        // marker from the same frame instead of running into the next one.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }

    /// A SYN_STREAM opening `stream` with `headers`.
    pub fn syn_stream(&mut self, stream: u32, headers: &[(&str, &str)], fin: bool) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        payload.extend_from_slice(&0u32.to_be_bytes()); // associated-to stream
        payload.extend_from_slice(&[0, 0]); // priority 0, slot 0
        payload.extend_from_slice(&self.block(headers));
        control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut bytes = data(5, b"hello", true);
        bytes.extend(ping(&7u32.to_be_bytes()));
        let mut reader = &bytes[..];
        assert_eq!(
            read_frame(&mut reader).await.expect("read"),
            Some(Frame::Data {
                stream: 5,
                fin: true,
                data: b"hello".to_vec()
            })
        );
        match read_frame(&mut reader).await.expect("read") {
            Some(Frame::Control { kind, payload, .. }) => {
                assert_eq!(kind, PING);
                assert_eq!(Frame::control_id(&payload), Some(7));
            }
            other => panic!("not a ping: {other:?}"),
        }
        assert_eq!(read_frame(&mut reader).await.expect("end"), None);
    }

    #[test]
    fn header_blocks_are_valid_zlib_streams() {
        let mut writer = HeaderWriter::default();
        let first = writer.block(&[("streamType", "error")]);
        let second = writer.block(&[("streamType", "stdout")]);
        // zlib header check bits, then stored blocks holding the plain name/value blocks.
        assert_eq!((u16::from(first[0]) << 8 | u16::from(first[1])) % 31, 0);
        let mut plain = Vec::new();
        plain.extend_from_slice(&1u32.to_be_bytes());
        plain.extend_from_slice(&10u32.to_be_bytes());
        plain.extend_from_slice(b"streamtype");
        plain.extend_from_slice(&5u32.to_be_bytes());
        plain.extend_from_slice(b"error");
        assert_eq!(first[2], 0);
        assert_eq!(
            u16::from_le_bytes([first[3], first[4]]) as usize,
            plain.len()
        );
        assert_eq!(&first[7..7 + plain.len()], &plain[..]);
        assert_eq!(&first[7 + plain.len()..], &[0, 0, 0, 0xff, 0xff]);
        assert_eq!(second[0], 0, "no second zlib header");
    }
}
