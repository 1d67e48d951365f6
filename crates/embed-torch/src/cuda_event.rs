//! Waiting for *part* of the work queued on a CUDA device.
//!
//! libtorch (and `tch`) can only wait for a device by copying a result back, which waits for
//! everything queued on the stream so far. A pipeline that queues batch `i + 1` before it
//! collects batch `i` then stalls until `i + 1` is done too, and the device idles while the
//! next batch is being queued. A [`CudaEvent`] marks a point in the stream instead: after
//! queuing batch `i`'s forward pass and an asynchronous copy of its result into pinned memory,
//! record an event; queue batch `i + 1`; then wait for the event only.
//!
//! The CUDA runtime's event functions are looked up at run time in the libraries already loaded
//! (libtorch's CUDA build brings `libcudart`), on libtorch's current stream (found through
//! `aoti_torch_get_current_cuda_stream`). Where they are missing (a CPU-only libtorch, another
//! platform), or when `EMBED_TORCH_CUDA_EVENTS=0` is set, [`CudaEvent::record`] returns `None`
//! and callers fall back to a blocking copy.
//!
//! Waiting polls the event and sleeps between polls, leaving the core to other threads
//! (decoding workers), where a synchronising copy may spin on it.
//!
//! ```no_run
//! use embed_torch::CudaEvent;
//! use tch::{Device, Kind, Tensor};
//!
//! let device = Device::Cuda(0);
//! let x = Tensor::randn([256, 512], (Kind::Float, device));
//! // An asynchronous copy into pinned host memory, then a mark after it.
//! let host = x.to_device_(Device::Cpu, Kind::Float, true, false);
//! if let Some(done) = CudaEvent::record(device)? {
//!     done.wait(std::time::Duration::from_micros(50))?; // `host` now holds `x`
//! }
//! # Ok::<(), embed_torch::Error>(())
//! ```

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use tch::Device;

use crate::{Error, Result};

/// `cudaEventDisableTiming`: no timestamps, the cheapest kind of event.
const DISABLE_TIMING: u32 = 0x02;
/// `cudaSuccess`.
const SUCCESS: c_int = 0;
/// `cudaErrorNotReady`: the event's work is still running.
const NOT_READY: c_int = 600;

type EventCreate = unsafe extern "C" fn(*mut *mut c_void, u32) -> c_int;
type EventRecord = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type EventQuery = unsafe extern "C" fn(*mut c_void) -> c_int;
type EventDestroy = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetDevice = unsafe extern "C" fn(*mut c_int) -> c_int;
type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
type CurrentStream = unsafe extern "C" fn(i32, *mut *mut c_void) -> i32;

/// The runtime functions, when every one of them is loaded.
struct Api {
    create: EventCreate,
    record: EventRecord,
    query: EventQuery,
    destroy: EventDestroy,
    get_device: GetDevice,
    set_device: SetDevice,
    current_stream: CurrentStream,
}

/// Looks a function up in the libraries already loaded.
#[cfg(unix)]
fn symbol(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the global scope.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

#[cfg(not(unix))]
fn symbol(_name: &std::ffi::CStr) -> Option<*mut c_void> {
    None
}

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        // Referencing libtorch_cuda keeps it loaded where it exists (see `cuda_link`).
        crate::cuda_link::keep_cuda_linked();
        // SAFETY: each pointer is the named C function of the CUDA runtime (or of libtorch's
        // AOTI shim), whose signature the transmuted type spells out.
        unsafe {
            Some(Api {
                create: std::mem::transmute::<*mut c_void, EventCreate>(symbol(
                    c"cudaEventCreateWithFlags",
                )?),
                record: std::mem::transmute::<*mut c_void, EventRecord>(symbol(
                    c"cudaEventRecord",
                )?),
                query: std::mem::transmute::<*mut c_void, EventQuery>(symbol(c"cudaEventQuery")?),
                destroy: std::mem::transmute::<*mut c_void, EventDestroy>(symbol(
                    c"cudaEventDestroy",
                )?),
                get_device: std::mem::transmute::<*mut c_void, GetDevice>(symbol(
                    c"cudaGetDevice",
                )?),
                set_device: std::mem::transmute::<*mut c_void, SetDevice>(symbol(
                    c"cudaSetDevice",
                )?),
                current_stream: std::mem::transmute::<*mut c_void, CurrentStream>(symbol(
                    c"aoti_torch_get_current_cuda_stream",
                )?),
            })
        }
    })
    .as_ref()
}

/// Whether [`CudaEvent`]s can be made in this process: a CUDA build of libtorch is loaded, and
/// the environment variable `EMBED_TORCH_CUDA_EVENTS` is not `0` (which turns them off, for
/// comparison or should a driver misbehave; callers then wait with a blocking copy).
pub fn cuda_events_available() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    let off =
        *OFF.get_or_init(|| std::env::var_os("EMBED_TORCH_CUDA_EVENTS").is_some_and(|v| v == "0"));
    !off && api().is_some()
}

fn check(what: &str, code: c_int) -> Result<()> {
    if code == SUCCESS {
        Ok(())
    } else {
        Err(Error::Device(format!(
            "{what} failed with CUDA error {code}"
        )))
    }
}

/// Runs `f` with `index` as the thread's current CUDA device, restoring the previous one.
fn on_device<T>(api: &Api, index: c_int, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut previous: c_int = 0;
    // SAFETY: plain CUDA runtime calls with valid out-pointers.
    check("cudaGetDevice", unsafe { (api.get_device)(&mut previous) })?;
    if previous != index {
        check("cudaSetDevice", unsafe { (api.set_device)(index) })?;
    }
    let out = f();
    if previous != index {
        // SAFETY: as above; `previous` was the current device a moment ago.
        check("cudaSetDevice", unsafe { (api.set_device)(previous) })?;
    }
    out
}

/// A point in a CUDA device's (libtorch's current) stream: everything queued before
/// [`CudaEvent::record`] is done once the event is. See the module documentation.
/// `None` from `record` where [`cuda_events_available`] is false.
#[derive(Debug)]
pub struct CudaEvent {
    event: *mut c_void,
}

// SAFETY: a CUDA event handle may be queried and destroyed from any thread.
unsafe impl Send for CudaEvent {}

impl CudaEvent {
    /// Records an event after the work queued so far on `device`'s current stream. `None`
    /// when `device` is not a CUDA device or the CUDA runtime's functions are not loaded.
    pub fn record(device: Device) -> Result<Option<Self>> {
        let (Device::Cuda(index), true, Some(api)) = (device, cuda_events_available(), api())
        else {
            return Ok(None);
        };
        let index = c_int::try_from(index)
            .map_err(|_| Error::Device(format!("CUDA device index {index} out of range")))?;
        on_device(api, index, || {
            let mut stream: *mut c_void = std::ptr::null_mut();
            // SAFETY: valid out-pointer; the index names an existing device (libtorch placed
            // tensors on it).
            let code = unsafe { (api.current_stream)(index, &mut stream) };
            if code != 0 {
                return Err(Error::Device(format!(
                    "aoti_torch_get_current_cuda_stream failed ({code})"
                )));
            }
            let mut event: *mut c_void = std::ptr::null_mut();
            // SAFETY: valid out-pointer.
            check("cudaEventCreateWithFlags", unsafe {
                (api.create)(&mut event, DISABLE_TIMING)
            })?;
            let done = Self { event };
            // SAFETY: `event` was just created on this device, `stream` is libtorch's stream.
            check("cudaEventRecord", unsafe {
                (api.record)(done.event, stream)
            })?;
            Ok(Some(done))
        })
    }

    /// Whether everything queued before the event has finished.
    pub fn is_done(&self) -> Result<bool> {
        let api = api().ok_or_else(|| Error::Device("CUDA runtime not loaded".into()))?;
        // SAFETY: `self.event` is a live event (destroyed only in `drop`).
        match unsafe { (api.query)(self.event) } {
            SUCCESS => Ok(true),
            NOT_READY => Ok(false),
            code => check("cudaEventQuery", code).map(|()| false),
        }
    }

    /// Waits until [`CudaEvent::is_done`], sleeping `poll` between queries.
    pub fn wait(&self, poll: Duration) -> Result<()> {
        while !self.is_done()? {
            std::thread::sleep(poll);
        }
        Ok(())
    }
}

impl Drop for CudaEvent {
    fn drop(&mut self) {
        if let Some(api) = api() {
            // SAFETY: `self.event` is live and destroyed once; destroying an event whose work
            // is pending is allowed (CUDA releases it when the work completes).
            unsafe {
                (api.destroy)(self.event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_event_off_cuda() {
        assert!(CudaEvent::record(Device::Cpu).unwrap().is_none());
    }

    #[test]
    fn waits_for_a_copy_on_cuda() {
        if !tch::Cuda::is_available() {
            eprintln!("no CUDA device: skipped");
            return;
        }
        let device = Device::Cuda(0);
        let x = tch::Tensor::arange(1 << 20, (tch::Kind::Float, device)) * 3.0;
        let host = x.to_device_(Device::Cpu, tch::Kind::Float, true, false);
        let done = CudaEvent::record(device)
            .unwrap()
            .expect("CUDA runtime found");
        done.wait(Duration::from_micros(20)).unwrap();
        assert!(done.is_done().unwrap());
        let expected = tch::Tensor::arange(1 << 20, (tch::Kind::Float, Device::Cpu)) * 3.0;
        assert!(host.equal(&expected));
    }
}
