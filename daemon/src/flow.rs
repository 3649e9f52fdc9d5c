//! The MCP transport of one connection, wrapped for two jobs rmcp does not
//! do: back-pressure and knowing at once when the client left.
//!
//! - Back-pressure: each request the client sends takes a permit, given back
//!   when its response has been written (or the client cancelled it). With
//!   all permits taken, further requests wait here (a bounded number), while
//!   notifications (cancels) and the client's EOF still get through; with
//!   that queue full too, nothing more is read, so a client that pipelines
//!   requests and never reads the answers fills its socket, not the daemon's
//!   memory (rmcp would otherwise spawn a task per request and keep every
//!   unsent response).
//! - Departure: rmcp waits several seconds for running handlers after the
//!   client's EOF before it cancels them; [`FlowControl::closed`] fires on the
//!   EOF itself, so a turn whose client is gone is cancelled at once.
//! - Delivery: [`Responses::sent`] fires once a request's response has been
//!   written, so work that can wait (keeping the answer on disk) does not
//!   compete with the answer on its way out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, JsonRpcMessage, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Requests one connection may have in flight at once. Claude Code runs a
/// handful at a time.
pub const MAX_IN_FLIGHT: usize = 32;
/// Requests read while all permits are taken, kept until one is free; past
/// this the connection is not read at all.
pub const MAX_WAITING: usize = 64;

/// A transport with request back-pressure and an EOF signal.
pub struct FlowControl<T> {
    inner: T,
    permits: Arc<Semaphore>,
    held: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
    /// Requests read while no permit was free, oldest first.
    waiting: VecDeque<RxJsonRpcMessage<RoleServer>>,
    closed: CancellationToken,
    responses: Responses,
}

/// The responses of one connection that someone waits to see written.
#[derive(Clone, Default)]
pub struct Responses {
    waited: Arc<Mutex<HashMap<RequestId, CancellationToken>>>,
}

impl Responses {
    /// Cancelled once the response to `request` has been written (or its
    /// write failed, or the client cancelled the request). Never, if no
    /// response goes out for another reason: wait on it with a limit.
    pub fn sent(&self, request: &RequestId) -> CancellationToken {
        lock(&self.waited).entry(request.clone()).or_default().clone()
    }

    fn take(&self, request: &RequestId) -> Option<CancellationToken> {
        lock(&self.waited).remove(request)
    }
}

impl<T> FlowControl<T> {
    pub fn new(inner: T) -> FlowControl<T> {
        FlowControl {
            inner,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            held: Arc::default(),
            waiting: VecDeque::new(),
            closed: CancellationToken::new(),
            responses: Responses::default(),
        }
    }

    /// When each response has been written.
    pub fn responses(&self) -> Responses {
        self.responses.clone()
    }

    /// Cancelled when the client's side of the connection ends.
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }
}

impl<T> FlowControl<T> {
    /// Hands the oldest waiting request to rmcp with `permit`.
    fn release(&mut self, permit: OwnedSemaphorePermit) -> Option<RxJsonRpcMessage<RoleServer>> {
        let request = self.waiting.pop_front()?;
        if let JsonRpcMessage::Request(inner) = &request {
            lock(&self.held).insert(inner.id.clone(), permit);
        }
        Some(request)
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
        let permit = answered.as_ref().and_then(|id| lock(&self.held).remove(id));
        let sent = answered.as_ref().and_then(|id| self.responses.take(id));
        let send = self.inner.send(item);
        async move {
            let result = send.await;
            // Given back only once the response is out of our hands.
            drop(permit);
            if let Some(sent) = sent {
                sent.cancel();
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            // A waiting request goes first, in order, once a permit is free.
            if !self.waiting.is_empty()
                && let Ok(permit) = self.permits.clone().try_acquire_owned()
            {
                return self.release(permit);
            }
            let can_read = self.waiting.len() < MAX_WAITING;
            tokio::select! {
                permit = self.permits.clone().acquire_owned(), if !self.waiting.is_empty() => {
                    let permit = permit.ok()?;
                    return self.release(permit);
                }
                // rmcp's read is cancel-safe: a line half read is kept.
                message = self.inner.receive(), if can_read => match message {
                    None => {
                        // The client is gone; requests still waiting never
                        // started and are dropped with the connection.
                        self.closed.cancel();
                        return None;
                    }
                    Some(JsonRpcMessage::Request(request)) => {
                        self.waiting.push_back(JsonRpcMessage::Request(request));
                    }
                    Some(JsonRpcMessage::Notification(notification)) => {
                        // A cancelled request gets no response: its permit is
                        // free, and if it is still waiting it never starts.
                        if let ClientNotification::CancelledNotification(cancelled) = &notification.notification
                            && let Some(id) = &cancelled.params.request_id
                        {
                            lock(&self.held).remove(id);
                            // No response will come: what waits for one
                            // need not.
                            if let Some(sent) = self.responses.take(id) {
                                sent.cancel();
                            }
                            self.waiting
                                .retain(|waiting| !matches!(waiting, JsonRpcMessage::Request(request) if &request.id == id));
                        }
                        return Some(JsonRpcMessage::Notification(notification));
                    }
                    Some(other) => return Some(other),
                },
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.closed.cancel();
        self.inner.close().await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{NumberOrString, ServerResult};

    /// A transport whose writes finish only when the test says so.
    struct Gated {
        written: tokio::sync::mpsc::UnboundedSender<TxJsonRpcMessage<RoleServer>>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Transport<RoleServer> for Gated {
        type Error = std::io::Error;

        fn send(
            &mut self,
            item: TxJsonRpcMessage<RoleServer>,
        ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
            let (written, gate) = (self.written.clone(), self.gate.clone());
            async move {
                let _pass = gate.acquire_owned().await.map_err(std::io::Error::other)?;
                let _ = written.send(item);
                Ok(())
            }
        }

        async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
            None
        }

        async fn close(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_response_is_reported_sent_once_it_is_written_and_not_before() {
        let (written, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut flow = FlowControl::new(Gated {
            written,
            gate: gate.clone(),
        });
        let (one, two) = (NumberOrString::Number(1), NumberOrString::Number(2));
        let sent = flow.responses().sent(&one);
        let other = flow.responses().sent(&two);
        // A council keeps one answer per member of the same request.
        let again = flow.responses().sent(&one);

        let sending = tokio::spawn(flow.send(JsonRpcMessage::response(ServerResult::empty(()), one.clone())));
        tokio::task::yield_now().await;
        assert!(!sent.is_cancelled(), "not before the write has finished");
        gate.add_permits(1);
        sending.await.expect("task").expect("sent");
        assert!(seen.recv().await.is_some());
        assert!(sent.is_cancelled(), "the response to request 1 is out");
        assert!(again.is_cancelled(), "for every keep that waited on it");
        assert!(!other.is_cancelled(), "request 2 has no response yet");
        assert!(flow.responses().take(&one).is_none(), "nothing is left behind");
    }
}
