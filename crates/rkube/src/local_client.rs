//! The client of a component that runs in `rkube server`'s own process (controller manager,
//! scheduler, cluster DNS, the server's node): kube-rs's `Client` over the API server's
//! [`LocalDoor`], as kube-apiserver gives its own loopback client. Requests and watches are
//! the same JSON as over HTTPS, without a TCP connection, a TLS session or HTTP framing for
//! each of the components: before, every request and watch event was encrypted, framed and
//! parsed twice over inside one process.

use http_body_util::BodyExt as _;
use kube::Client;
use rkube_apiserver::LocalDoor;
use tower::BoxError;

/// A client whose requests `door` answers.
pub fn client(door: LocalDoor) -> Client {
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let door = door.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(door.call(http::Request::from_parts(parts, body)).await)
        }
    });
    Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams, WatchEvent, WatchParams};
    use rkube_apiserver::ApiServer;
    use rkube_apiserver::auth::User;
    use rkube_store::Backend;
    use serde_json::json;

    use super::*;

    async fn start(dir: &std::path::Path) -> ApiServer {
        let backend = Backend::from_endpoint(None, dir.to_owned()).expect("backend");
        let store = backend.open().await.expect("store");
        ApiServer::start(rkube_apiserver::Config {
            data_dir: dir.to_owned(),
            https_port: 0,
            bind_address: std::net::Ipv4Addr::LOCALHOST.into(),
            store,
            admission: Default::default(),
            token: None,
            service_network: Default::default(),
        })
        .await
        .expect("API server")
    }

    #[tokio::test]
    async fn a_component_in_the_process_reads_writes_and_watches_as_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = start(dir.path()).await;
        let client = client(api.local_door(User::component("system:kube-controller-manager")));

        // Who the server takes the client for.
        let review = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(
                serde_json::to_vec(&json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "SelfSubjectReview",
                }))
                .expect("json"),
            )
            .expect("request");
        let review: serde_json::Value = client.request(review).await.expect("review");
        assert_eq!(
            review["status"]["userInfo"]["username"],
            "system:kube-controller-manager"
        );

        // A write, a read, and a watch that sees the next write.
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let mut map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "settings"},
            "data": {"mode": "fast"},
        }))
        .expect("config map");
        let created = maps
            .create(&PostParams::default(), &map)
            .await
            .expect("create");
        let version = created.metadata.resource_version.clone().expect("version");
        let got = maps.get("settings").await.expect("get");
        assert_eq!(got.data, map.data);
        let mut events = maps
            .watch(
                &WatchParams::default().fields("metadata.name=settings"),
                &version,
            )
            .await
            .expect("watch")
            .boxed();
        map.metadata.resource_version = Some(version);
        map.data = Some([("mode".to_owned(), "safe".to_owned())].into());
        maps.replace("settings", &PostParams::default(), &map)
            .await
            .expect("replace");
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.try_next())
            .await
            .expect("an event in time")
            .expect("a watch event")
            .expect("the watch still open");
        let WatchEvent::Modified(seen) = event else {
            panic!("expected MODIFIED, got {event:?}");
        };
        assert_eq!(seen.data, map.data);

        // Bad input gets its Status as over a connection: a body over 3 MiB is 413.
        let mut big = map.clone();
        big.metadata = kube::api::ObjectMeta {
            name: Some("big".to_owned()),
            ..Default::default()
        };
        big.data = Some([("blob".to_owned(), "x".repeat(4 << 20))].into());
        match maps.create(&PostParams::default(), &big).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 413, "{status:?}"),
            other => panic!("expected a 413, got {other:?}"),
        }
        // Each component may do what its role allows: the scheduler writes no ConfigMaps.
        let scheduler = super::client(api.local_door(User::component("system:kube-scheduler")));
        let as_scheduler: Api<ConfigMap> = Api::namespaced(scheduler, "default");
        match as_scheduler.create(&PostParams::default(), &map).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
            other => panic!("expected a 403, got {other:?}"),
        }
        // The kubelet's streams need a connection to upgrade: the door says so.
        let logs = http::Request::get("/api/v1/namespaces/default/pods/web/log")
            .body(Vec::new())
            .expect("request");
        match client.request_text(logs).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 400, "{status:?}");
                assert!(status.message.contains("HTTPS"), "{status:?}");
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }
}
