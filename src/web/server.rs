//! The HTTP/1.1 server under the router: at most `max_connections` connections at once
//! (the others wait in the listen queue), and every connection must send a request's
//! headers within `header_timeout` of opening or of its previous answer, so neither slow
//! senders nor idle keep-alive connections hold a place for long.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

/// The limits of the connections, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// The address a request's connection was accepted on (what the client connected to),
/// in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct AcceptedOn(pub SocketAddr);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets each
/// connection finish its request in flight, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    // Dropped to tell the connections to finish; each holds a receiver until it closes.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &places) => accepted,
        };
        let Some((stream, place)) = accepted else { continue };
        let Ok(local) = stream.local_addr() else { continue };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(AcceptedOn(local));
            // The router is always ready, and a clone per request is a reference count.
            let call: axum::routing::future::RouteFuture<Infallible> =
                app.clone().call(request.map(axum::body::Body::new));
            call
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "a connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(place);
            drop(stop);
        });
    }
    drop(stop_rx);
    drop(listener);
    stop_tx.send_replace(());
    stop_tx.closed().await;
}

/// A free place, then a connection; `None` when accepting failed (the error is logged
/// and, for a lack of file descriptors, waited out a little).
async fn accept(
    listener: &TcpListener,
    places: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let place = places.clone().acquire_owned().await.expect("the semaphore is never closed");
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, place)),
        Err(err) => {
            tracing::warn!(%err, "could not accept a connection");
            // EMFILE and the like last a while: do not spin on them.
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}
