//! Reading a webhook's body within the server's limits: no larger than
//! `max_body`, no slower than `read_timeout`, and only while the bytes every
//! connection holds together stay under `max_in_flight` — so many clients
//! parking large bodies at once cannot take the process's memory.

use axum::body::Body;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Why a body was not read whole.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRefused {
    /// Declared or grown past `max_body`: 413.
    TooLarge,
    /// Every byte of `max_in_flight` is held by other bodies: 503, retry.
    Busy,
    /// The client sent it slower than `read_timeout`: 408.
    TooSlow,
    /// The connection broke mid-body.
    Broken,
}

/// The bytes held by bodies being read, shared by every connection.
#[derive(Clone)]
pub struct InFlight {
    budget: Arc<Semaphore>,
}

impl InFlight {
    pub fn new(max_bytes: usize) -> Self {
        Self { budget: Arc::new(Semaphore::new(max_bytes.min(Semaphore::MAX_PERMITS))) }
    }
}

/// A body read whole, with its share of the in-flight budget (given back
/// when the request is done with it).
pub struct ReadBody {
    pub bytes: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

pub async fn read(
    body: Body,
    declared_length: Option<u64>,
    max_body: usize,
    in_flight: &InFlight,
    timeout: Duration,
) -> Result<ReadBody, BodyRefused> {
    if declared_length.is_some_and(|length| length > max_body as u64) {
        return Err(BodyRefused::TooLarge);
    }
    let reading = async {
        // Sized once when declared, so a body is one allocation given back whole.
        let mut bytes = Vec::with_capacity(declared_length.map_or(0, |length| length as usize));
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| BodyRefused::Broken)?;
            if bytes.len() + chunk.len() > max_body {
                return Err(BodyRefused::TooLarge);
            }
            let permits = u32::try_from(chunk.len()).map_err(|_| BodyRefused::TooLarge)?;
            if permits > 0 {
                let more = match in_flight.budget.clone().try_acquire_many_owned(permits) {
                    Ok(more) => more,
                    Err(TryAcquireError::NoPermits) | Err(TryAcquireError::Closed) => return Err(BodyRefused::Busy),
                };
                match &mut held {
                    Some(held) => held.merge(more),
                    None => held = Some(more),
                }
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(ReadBody { bytes, _held: held })
    };
    tokio::time::timeout(timeout, reading).await.map_err(|_| BodyRefused::TooSlow)?
}
