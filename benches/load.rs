//! Load-generator benchmark: how many requests per second `mldeploy test`'s generator sustains
//! against a trivial local HTTP/1.1 server, and at what latency. See docs/performance.md.
//!
//! ```sh
//! cargo bench --bench load                                   # server + generator, 64 connections, 10 s
//! cargo bench --bench load -- --serve 127.0.0.1:18080        # only the server (for wrk)
//! cargo bench --bench load -- --url http://127.0.0.1:18080   # only the generator
//! ```
//! Options: `--concurrency N` (64), `--duration SECS` (10), `--rate R` (open loop).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use mldeploy::config::Protocol;
use mldeploy::verify::endpoint::Endpoint;
use mldeploy::verify::load::{self, Counters, Plan};
use mldeploy::verify::protocol;

const ANSWER: &[u8] = br#"{"predictions":[1]}"#;

async fn answer(
    _req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(ANSWER)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A trivial server: every request gets the same small JSON answer, keep-alive.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper::service::service_fn(answer),
                )
                .await;
        });
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; ignore what we do not know.
    if let Some(addr) = arg(&args, "--serve") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
            eprintln!("serving on http://{addr}");
            serve(listener).await;
        });
        return;
    }
    let concurrency: usize = arg(&args, "--concurrency").map_or(64, |v| v.parse().expect("N"));
    let secs: u64 = arg(&args, "--duration").map_or(10, |v| v.parse().expect("seconds"));
    let rate: Option<f64> = arg(&args, "--rate").map(|v| v.parse().expect("rate"));
    let url = match arg(&args, "--url") {
        Some(u) => u,
        None => {
            // In-process server on its own one-thread runtime.
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            std_listener.set_nonblocking(true).expect("nonblocking");
            let addr: SocketAddr = std_listener.local_addr().expect("addr");
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    serve(tokio::net::TcpListener::from_std(std_listener).expect("listener")).await;
                });
            });
            format!("http://{addr}")
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let endpoint = Endpoint::direct(&url, "", "bench", &[], false).expect("url");
    let call = protocol::infer(
        Protocol::KserveV1,
        "bench",
        br#"{"instances":[[1.0,2.0,3.0,4.0]]}"#.to_vec(),
    );
    let req = endpoint.request(&call).expect("request");
    let plan = Plan {
        concurrency,
        rate,
        duration: Some(Duration::from_secs(secs)),
        requests: None,
        warmup: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
    };
    let o = rt.block_on(load::run(
        &endpoint,
        &req,
        plan,
        Arc::new(Counters::default()),
        Arc::new(AtomicBool::new(false)),
    ));
    let h = &o.hist.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "mldeploy load: {} connections, {}s{}: {} requests, {:.0} req/s, {} errors; latency p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms max {:.3} ms",
        concurrency,
        secs,
        rate.map_or(String::new(), |r| format!(" at {r}/s")),
        o.total(),
        o.throughput(),
        o.total() - o.ok,
        ms(h.value_at_percentile(50.0)),
        ms(h.value_at_percentile(90.0)),
        ms(h.value_at_percentile(99.0)),
        ms(h.value_at_percentile(99.9)),
        ms(h.max()),
    );
}
