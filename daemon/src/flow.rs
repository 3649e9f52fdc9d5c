//! The MCP transport of one connection, wrapped for two jobs rmcp does not
//! do: back-pressure and knowing at once when the client left.
//!
//! - Back-pressure: each request the client sends takes a permit, given back
//!   when its response has been written (or the client cancelled it). With
//!   all permits taken the next message is not read, so a client that
//!   pipelines requests and never reads the answers fills its socket, not the
//!   daemon's memory (rmcp would otherwise spawn a task per request and keep
//!   every unsent response).
//! - Departure: rmcp waits several seconds for running handlers after the
//!   client's EOF before it cancels them; [`FlowControl::closed`] fires on the
//!   EOF itself, so a turn whose client is gone is cancelled at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, JsonRpcMessage, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Requests one connection may have in flight before the daemon stops
/// reading from it. Claude Code runs a handful at a time.
pub const MAX_IN_FLIGHT: usize = 32;

/// A transport with request back-pressure and an EOF signal.
pub struct FlowControl<T> {
    inner: T,
    permits: Arc<Semaphore>,
    held: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
    closed: CancellationToken,
}

impl<T> FlowControl<T> {
    pub fn new(inner: T) -> FlowControl<T> {
        FlowControl {
            inner,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            held: Arc::default(),
            closed: CancellationToken::new(),
        }
    }

    /// Cancelled when the client's side of the connection ends.
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }
}

impl<T> Transport<RoleServer> for FlowControl<T>
where
    T: Transport<RoleServer>,
{
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let answered = match &item {
            JsonRpcMessage::Response(response) => Some(response.id.clone()),
            JsonRpcMessage::Error(error) => error.id.clone(),
            _ => None,
        };
        let permit = answered.and_then(|id| lock(&self.held).remove(&id));
        let send = self.inner.send(item);
        async move {
            let result = send.await;
            // Given back only once the response is out of our hands.
            drop(permit);
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            // Closed semaphores never happen; this arm keeps a stuck
            // connection from outliving a cancelled serve loop.
            _ = self.closed.cancelled() => None,
        };
        let message = self.inner.receive().await;
        match &message {
            None => self.closed.cancel(),
            Some(JsonRpcMessage::Request(request)) => {
                if let Some(permit) = permit {
                    lock(&self.held).insert(request.id.clone(), permit);
                }
            }
            Some(JsonRpcMessage::Notification(notification)) => {
                // A cancelled request gets no response; its permit is free.
                if let ClientNotification::CancelledNotification(cancelled) = &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    lock(&self.held).remove(id);
                }
            }
            Some(_) => {}
        }
        message
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.closed.cancel();
        self.inner.close().await
    }
}

fn lock(
    held: &Mutex<HashMap<RequestId, OwnedSemaphorePermit>>,
) -> std::sync::MutexGuard<'_, HashMap<RequestId, OwnedSemaphorePermit>> {
    held.lock().unwrap_or_else(|poison| poison.into_inner())
}
