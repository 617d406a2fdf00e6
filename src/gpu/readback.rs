//! Reading a buffer back: `map_async` as a future that works natively (the
//! device polled) and in the browser (the callback wakes it).

use std::future::Future;
use std::pin::Pin;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::vec::Vec;

use super::{lock, GpuError};

/// Maps `buffer[..size]` for reading and waits for it; reports any error wgpu
/// raised meanwhile (validation, out of memory) instead of the data.
pub(super) async fn map_read(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    size: u64,
    errors: &Mutex<Vec<String>>,
) -> Result<(), GpuError> {
    let slot = Arc::new(Mutex::new(MapSlot { result: None, waker: None }));
    let callback_slot = Arc::clone(&slot);
    buffer.slice(..size).map_async(wgpu::MapMode::Read, move |result| {
        let mut s = lock(&callback_slot);
        s.result = Some(result.map_err(|e| e.to_string()));
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    // Native: runs the queue and the map callback. The browser does both on its own.
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Wgpu(e.to_string()))?;
    let mapped = MapFuture(slot).await;
    if let Some(e) = lock(errors).drain(..).next() {
        if mapped.is_ok() {
            buffer.unmap();
        }
        return Err(GpuError::Wgpu(e));
    }
    mapped.map_err(GpuError::Wgpu)
}

struct MapSlot {
    result: Option<Result<(), String>>,
    waker: Option<Waker>,
}

/// Resolves when a `map_async` callback has run.
struct MapFuture(Arc<Mutex<MapSlot>>);

impl Future for MapFuture {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.0);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
