//! Loading the flowtap XDP program, attaching it to an interface through a
//! BPF link, replacing a stale one, and the maps it reads.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use libbpf_rs::{libbpf_sys, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, Xdp, XdpFlags};

use super::filter::{FilterDrops, PreFilter};
use super::{AttachMode, XdpError, XdpMode};

static OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flowtap.bpf.o"));

/// Name of our program as the kernel reports it (truncated to 15 bytes).
pub(crate) const PROG_NAME: &str = "flowtap_xdp";

/// The loaded program and its maps; attached while `link` lives.
pub(crate) struct Attached {
    pub(crate) iface: String,
    pub(crate) ifindex: u32,
    pub(crate) mode: AttachMode,
    link: OwnedFd,
    pub(crate) xsks: MapHandle,
    drops: MapHandle,
    rules: MapHandle,
    cidr4: MapHandle,
    cidr6: MapHandle,
    /// The pre-filter the maps hold now.
    filter: Mutex<PreFilter>,
    _obj: Object,
}

fn map_handle(obj: &Object, name: &str) -> Result<MapHandle, XdpError> {
    let m = obj
        .maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| XdpError::Bpf(format!("map {name} missing from the embedded object")))?;
    MapHandle::try_from(&m).map_err(|e| XdpError::Bpf(format!("map {name}: {e}")))
}

impl Attached {
    /// Loads the program, fills the filter maps, clears a stale flowtap
    /// program from the interface and attaches in the requested mode.
    pub(crate) fn load_and_attach(
        iface: &str,
        ifindex: u32,
        mode: XdpMode,
        filter: &PreFilter,
    ) -> Result<Attached, XdpError> {
        filter.validate().map_err(XdpError::Config)?;
        route_libbpf_messages();
        let open = ObjectBuilder::default()
            .open_memory(OBJ)
            .map_err(|e| XdpError::Bpf(format!("open: {e}")))?;
        let obj = open.load().map_err(|e| load_error(e.to_string()))?;

        let rules = map_handle(&obj, "ft_rules")?;
        rules
            .update(&0u32.to_ne_bytes(), &filter.rules_bytes(), MapFlags::ANY)
            .map_err(|e| XdpError::Bpf(format!("writing filter rules: {e}")))?;
        let cidr4 = map_handle(&obj, "ft_cidr4")?;
        let cidr6 = map_handle(&obj, "ft_cidr6")?;
        for (v6, key) in filter.cidr_keys() {
            let m = if v6 { &cidr6 } else { &cidr4 };
            m.update(&key, &[1u8], MapFlags::ANY)
                .map_err(|e| XdpError::Bpf(format!("writing CIDR rule: {e}")))?;
        }
        let xsks = map_handle(&obj, "ft_xsks")?;
        let drops = map_handle(&obj, "ft_drops")?;

        let prog = obj.progs().find(|p| p.name() == PROG_NAME).ok_or_else(|| {
            XdpError::Bpf("program flowtap_xdp missing from the embedded object".into())
        })?;
        let prog_fd = prog.as_fd();

        clear_stale(iface, ifindex, &Xdp::new(prog_fd))?;

        let try_mode = |m: AttachMode| -> io::Result<OwnedFd> {
            let flags = match m {
                AttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
                AttachMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
            };
            let opts = libbpf_sys::bpf_link_create_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
                flags,
                ..Default::default()
            };
            // SAFETY: valid program fd and ifindex; `opts` is a properly sized options struct.
            let fd = unsafe {
                libbpf_sys::bpf_link_create(
                    prog_fd.as_raw_fd(),
                    ifindex as i32,
                    libbpf_sys::BPF_XDP,
                    &opts,
                )
            };
            if fd < 0 {
                return Err(io::Error::from_raw_os_error(-fd));
            }
            // SAFETY: `fd` is a fresh link descriptor we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let (link, mode) = match mode {
            XdpMode::Native => (
                try_mode(AttachMode::Native)
                    .map_err(|e| attach_error(iface, AttachMode::Native, e))?,
                AttachMode::Native,
            ),
            XdpMode::Generic => (
                try_mode(AttachMode::Generic)
                    .map_err(|e| attach_error(iface, AttachMode::Generic, e))?,
                AttachMode::Generic,
            ),
            XdpMode::Auto => {
                match try_mode(AttachMode::Native) {
                    Ok(l) => (l, AttachMode::Native),
                    Err(e) => {
                        log::info!("native XDP on {iface} not available ({e}); falling back to generic mode");
                        (
                            try_mode(AttachMode::Generic)
                                .map_err(|e| attach_error(iface, AttachMode::Generic, e))?,
                            AttachMode::Generic,
                        )
                    }
                }
            }
        };
        log::info!("flowtap XDP program attached to {iface} in {mode} mode");
        Ok(Attached {
            iface: iface.to_string(),
            ifindex,
            mode,
            link,
            xsks,
            drops,
            rules,
            cidr4,
            cidr6,
            filter: Mutex::new(filter.clone()),
            _obj: obj,
        })
    }

    /// Replaces the pre-filter in the running program's maps (no detach, no
    /// frame lost): new CIDR prefixes are added first, then the rules word
    /// (flags, protocol, VLAN and port bitmaps) is written in one map
    /// update, then the prefixes no longer wanted are removed. A frame is
    /// judged by the old rules or the new, never by none. Map updates go
    /// through the descriptors held since the load, so this works after
    /// the capabilities were dropped (kernel >= 6.5 checks them only when a
    /// map or program is created).
    pub(crate) fn update_filter(&self, new: &PreFilter) -> Result<(), XdpError> {
        new.validate().map_err(XdpError::Config)?;
        let mut current = self
            .filter
            .lock()
            .map_err(|_| XdpError::Bpf("pre-filter state poisoned".into()))?;
        let old_keys = current.cidr_keys();
        let new_keys = new.cidr_keys();
        for (v6, key) in &new_keys {
            if old_keys.contains(&(*v6, key.clone())) {
                continue;
            }
            let m = if *v6 { &self.cidr6 } else { &self.cidr4 };
            m.update(key, &[1u8], MapFlags::ANY)
                .map_err(|e| XdpError::Bpf(format!("writing CIDR rule: {e}")))?;
        }
        self.rules
            .update(&0u32.to_ne_bytes(), &new.rules_bytes(), MapFlags::ANY)
            .map_err(|e| XdpError::Bpf(format!("writing filter rules: {e}")))?;
        for (v6, key) in &old_keys {
            if new_keys.contains(&(*v6, key.clone())) {
                continue;
            }
            let m = if *v6 { &self.cidr6 } else { &self.cidr4 };
            m.delete(key)
                .map_err(|e| XdpError::Bpf(format!("removing CIDR rule: {e}")))?;
        }
        *current = new.clone();
        Ok(())
    }

    /// The pre-filter the maps hold now.
    pub(crate) fn current_filter(&self) -> PreFilter {
        self.filter.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Per-reason drop counters, summed over CPUs.
    pub(crate) fn drops(&self) -> Result<FilterDrops, XdpError> {
        let mut slots = [0u64; 8];
        for (i, slot) in slots
            .iter_mut()
            .enumerate()
            .take(FilterDrops::SLOTS as usize)
        {
            let per_cpu = self
                .drops
                .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| XdpError::Bpf(format!("reading drop counters: {e}")))?
                .unwrap_or_default();
            *slot = per_cpu
                .iter()
                .map(|v| {
                    v.get(..8)
                        .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                        .unwrap_or(0)
                })
                .sum();
        }
        Ok(FilterDrops::from_slots(&slots))
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: `link` is our valid link descriptor; detaching is idempotent.
        let r = unsafe { libbpf_sys::bpf_link_detach(self.link.as_raw_fd()) };
        if r < 0 {
            log::warn!(
                "detaching XDP link from {} failed: {}",
                self.iface,
                io::Error::from_raw_os_error(-r)
            );
        } else {
            log::info!("flowtap XDP program detached from {}", self.iface);
        }
        // closing `link` (after this) releases it for good.
    }
}

/// libbpf prints its warnings straight to stderr; send them to `log` instead,
/// so a failed load ends in our one error line (which says what to do).
fn route_libbpf_messages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = libbpf_rs::set_print(Some((
            libbpf_rs::PrintLevel::Warn,
            |level, msg| match level {
                libbpf_rs::PrintLevel::Warn => log::warn!("libbpf: {}", msg.trim_end()),
                _ => log::debug!("libbpf: {}", msg.trim_end()),
            },
        )));
    });
}

fn load_error(msg: String) -> XdpError {
    if !crate::sys::may_capture() {
        return XdpError::NotRoot;
    }
    XdpError::Bpf(format!("loading the XDP program: {msg}"))
}

fn attach_error(iface: &str, mode: AttachMode, e: io::Error) -> XdpError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => XdpError::NotRoot,
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if mode == AttachMode::Native => {
            XdpError::NoXdpSupport {
                iface: iface.to_string(),
                mode,
                source: e,
            }
        }
        Some(libc::EBUSY) | Some(libc::EEXIST) => XdpError::XdpBusy {
            iface: iface.to_string(),
            detail: format!("attach in {mode} mode: {e}"),
        },
        _ => XdpError::NoXdpSupport {
            iface: iface.to_string(),
            mode,
            source: e,
        },
    }
}

/// The name of program `id`. Asked by id, not by walking every program:
/// libbpf-rs's iterators stop at the first object whose info they cannot
/// parse (another tool's), which once made flowtap's own stale program or
/// link look absent while other BPF users came and went.
fn prog_name(id: u32) -> Option<String> {
    // SAFETY: plain bpf syscall wrapper; a new fd or a negative value.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero is a valid bpf_prog_info (integers, arrays, pointers as u64).
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: `info` is a writable buffer of `len` bytes.
    let r = unsafe {
        libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_sys::bpf_prog_info).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    let name: Vec<u8> = info
        .name
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    Some(String::from_utf8_lossy(&name).into_owned())
}

/// The XDP link attached to `ifindex`, if any: its id and an fd on it.
/// Walks the link ids itself, skipping links that vanish or are not XDP
/// (see [`prog_name`] on why not libbpf-rs's iterator).
fn xdp_link_on(ifindex: u32) -> Option<(u32, OwnedFd)> {
    let mut id = 0u32;
    loop {
        // SAFETY: plain bpf syscall wrapper writing the next id into `id`.
        if unsafe { libbpf_sys::bpf_link_get_next_id(id, &mut id) } != 0 {
            return None;
        }
        // SAFETY: a new fd or a negative value (the link went away).
        let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid bpf_link_info (integers and unions of them).
        let mut info: libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: `info` is a writable buffer of `len` bytes.
        let r = unsafe {
            libbpf_sys::bpf_obj_get_info_by_fd(
                fd.as_raw_fd(),
                (&mut info as *mut libbpf_sys::bpf_link_info).cast(),
                &mut len,
            )
        };
        if r != 0 || info.type_ != libbpf_sys::BPF_LINK_TYPE_XDP {
            continue;
        }
        // SAFETY: `type_` says the union holds its `xdp` member.
        if unsafe { info.__bindgen_anon_1.xdp.ifindex } == ifindex {
            return Some((id, fd));
        }
    }
}

/// Removes a flowtap XDP program left on `iface` (by a crashed or leaked
/// capture, attached through a link or through netlink). Another program
/// on the interface is an error: we never remove what is not ours.
fn clear_stale(iface: &str, ifindex: u32, xdp: &Xdp<'_>) -> Result<(), XdpError> {
    let q = xdp
        .query(ifindex as i32, XdpFlags::NONE)
        .map_err(|e| XdpError::Bpf(format!("querying XDP on {iface}: {e}")))?;
    for (id, flag) in [
        (q.drv_prog_id, XdpFlags::DRV_MODE),
        (q.skb_prog_id, XdpFlags::SKB_MODE),
        (q.hw_prog_id, XdpFlags::HW_MODE),
    ] {
        if id == 0 {
            continue;
        }
        let name = prog_name(id).unwrap_or_default();
        if name != PROG_NAME {
            return Err(XdpError::XdpBusy {
                iface: iface.to_string(),
                detail: format!("program {name:?} (id {id}) is attached"),
            });
        }
        match xdp_link_on(ifindex) {
            Some((link_id, fd)) => {
                // SAFETY: valid link fd.
                let r = unsafe { libbpf_sys::bpf_link_detach(fd.as_raw_fd()) };
                if r < 0 {
                    return Err(XdpError::XdpBusy {
                        iface: iface.to_string(),
                        detail: format!(
                            "detaching stale flowtap link {}: {}",
                            link_id,
                            io::Error::from_raw_os_error(-r)
                        ),
                    });
                }
                log::warn!("replaced stale flowtap XDP link {link_id} (program {id}) on {iface}");
            }
            None => {
                xdp.detach(ifindex as i32, flag)
                    .map_err(|e| XdpError::XdpBusy {
                        iface: iface.to_string(),
                        detail: format!("detaching stale flowtap program {id}: {e}"),
                    })?;
                log::warn!("removed stale flowtap XDP program {id} on {iface}");
            }
        }
    }
    Ok(())
}

/// Program id attached to `ifindex` in any mode (0 when none). For tests and doctor.
pub fn attached_prog_id(ifindex: u32) -> u32 {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a properly sized options struct.
    let r = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if r < 0 {
        return 0;
    }
    opts.prog_id
        .max(opts.drv_prog_id)
        .max(opts.skb_prog_id)
        .max(opts.hw_prog_id)
}

/// What the driver of an interface supports, from the kernel's XDP feature
/// flags (kernel >= 6.3; `None` when the kernel does not report them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpFeatures {
    /// Native (driver) XDP.
    pub native: bool,
    /// XDP_REDIRECT (needed for AF_XDP in native mode).
    pub redirect: bool,
    /// AF_XDP zero-copy.
    pub zero_copy: bool,
}

/// Queries the XDP features of `iface` (for `flowtap doctor`).
pub fn xdp_features(iface: &str) -> Result<Option<XdpFeatures>, XdpError> {
    let ifindex =
        crate::sys::ifindex(iface).ok_or_else(|| XdpError::NoSuchInterface(iface.to_string()))?;
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: `opts` is a properly sized options struct.
    let r = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if r < 0 {
        return Err(XdpError::Io {
            what: "querying XDP features",
            source: io::Error::from_raw_os_error(-r),
        });
    }
    let f = opts.feature_flags;
    if f == 0 {
        return Ok(None);
    }
    Ok(Some(XdpFeatures {
        native: f & 1 != 0,
        redirect: f & 2 != 0,
        zero_copy: f & 8 != 0,
    }))
}
