//! AF_PACKET transmit: `sendmmsg` batches, bypassing the qdisc.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{GenError, GenReport, Pacer};
use crate::sys;

const BATCH: usize = 64;
const PACKET_QDISC_BYPASS: libc::c_int = 20;

pub(crate) fn send(
    ifindex: u32,
    frames: &[Vec<u8>],
    total: u64,
    pps: Option<f64>,
    stop: &AtomicBool,
) -> Result<GenReport, GenError> {
    // protocol 0: this socket receives nothing.
    let fd =
        sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => GenError::NotRoot,
            _ => GenError::Io {
                what: "creating AF_PACKET socket",
                source: e,
            },
        })?;
    let one: libc::c_int = 1;
    // Best effort: older kernels lack it.
    let _ = sys::setsockopt(fd.as_fd(), libc::SOL_PACKET, PACKET_QDISC_BYPASS, &one);
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid starting value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_protocol = 0;
    sys::bind(fd.as_fd(), &sll).map_err(|source| GenError::Io {
        what: "binding AF_PACKET socket to the interface",
        source,
    })?;

    let mut iov: Vec<libc::iovec> = vec![
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0
        };
        BATCH
    ];
    // SAFETY: mmsghdr is plain data; zeroed is a valid starting value.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let mut rep = GenReport::default();
    let mut pacer = Pacer::new(pps);
    let start = Instant::now();
    let mut i = 0usize; // next frame index
    while rep.sent + rep.failed < total && !stop.load(Ordering::Relaxed) {
        let done = rep.sent + rep.failed;
        let n = pacer.grant(done, (total - done).min(BATCH as u64), stop) as usize;
        if n == 0 {
            break;
        }
        let mut bytes = 0u64;
        for k in 0..n {
            let f = &frames[(i + k) % frames.len()];
            iov[k] = libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            };
            msgs[k].msg_hdr.msg_iov = &mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            bytes += f.len() as u64;
        }
        // SAFETY: `msgs[..n]` point at `iov[..n]`, which point at live frames
        // that outlive the call; the kernel only reads them.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {
                    std::thread::yield_now();
                    continue;
                }
                Some(libc::ENETDOWN) | Some(libc::ENXIO) => {
                    return Err(GenError::Io {
                        what: "sending (is the interface up? `ip link set dev IF up`)",
                        source: e,
                    })
                }
                Some(libc::EMSGSIZE) => {
                    // a frame larger than the MTU: skip it, count it
                    rep.failed += 1;
                    i = (i + 1) % frames.len();
                    continue;
                }
                _ => {
                    return Err(GenError::Io {
                        what: "sendmmsg",
                        source: e,
                    })
                }
            }
        }
        let r = r as usize;
        if r < n {
            bytes = (0..r)
                .map(|k| frames[(i + k) % frames.len()].len() as u64)
                .sum();
        }
        rep.sent += r as u64;
        rep.bytes += bytes;
        i = (i + r) % frames.len();
    }
    rep.elapsed = start.elapsed();
    Ok(rep)
}
