//! XDP live-frames transmit (BPF_PROG_TEST_RUN + BPF_F_TEST_XDP_LIVE_FRAMES).
//! Mirrors `struct gen_cfg` / `struct gen_frame` of `capture/bpf/gen.bpf.c`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use libbpf_rs::{MapCore, MapFlags, MapHandle, ObjectBuilder, ProgramInput};

use super::synth::port_offset;
use super::{GenError, GenReport, GenSource, Pacer, MAX_FRAME};

static OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gen.bpf.o"));

const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
const MAX_FRAMES: usize = 4096;
/// Frames per test-run call when unpaced: bounds how long `stop` waits.
const CHUNK: u64 = 1 << 18;
/// Largest frame a live-frames page holds (4096 - headroom - skb_shared_info).
const MAX_LIVE_FRAME: usize = 3000;

fn err(what: &str) -> impl Fn(libbpf_rs::Error) -> GenError + '_ {
    move |e| GenError::XdpLive(format!("{what}: {e}"))
}

fn find_map(obj: &libbpf_rs::Object, name: &str) -> Result<MapHandle, GenError> {
    let m = obj
        .maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| GenError::XdpLive(format!("map {name} missing")))?;
    MapHandle::try_from(&m).map_err(err("map handle"))
}

pub(crate) fn send(
    ifindex: u32,
    source: &GenSource,
    frames: &[Vec<u8>],
    total: u64,
    pps: Option<f64>,
    stop: &AtomicBool,
) -> Result<GenReport, GenError> {
    let obj = ObjectBuilder::default()
        .open_memory(OBJ)
        .map_err(err("open"))?
        .load()
        .map_err(err("load (needs kernel >= 5.18)"))?;
    let cfg_map = find_map(&obj, "gen_cfg")?;
    let frames_map = find_map(&obj, "gen_frames")?;
    let seq_map = find_map(&obj, "gen_seq")?;
    let prog = obj
        .progs_mut()
        .find(|p| p.name() == "flowtap_gen")
        .ok_or_else(|| GenError::XdpLive("program missing".into()))?;

    // gen_cfg { mode, nflows, nframes, port_off, port_base, pad }
    let (mode, nflows, nframes, port_off, port_base, template) = match source {
        GenSource::Synthetic(s) => (
            0u32,
            s.flows.max(1),
            0u32,
            port_offset(s) as u32,
            s.src_port as u32,
            frames[0].clone(),
        ),
        _ => {
            if frames.len() > MAX_FRAMES {
                return Err(GenError::XdpLive(format!(
                    "{} frames, at most {MAX_FRAMES} fit the frame map",
                    frames.len()
                )));
            }
            for (i, f) in frames.iter().enumerate() {
                let mut v = vec![0u8; 4 + MAX_FRAME];
                v[..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
                v[4..4 + f.len()].copy_from_slice(f);
                frames_map
                    .update(&(i as u32).to_ne_bytes(), &v, MapFlags::ANY)
                    .map_err(err("writing frames"))?;
            }
            let maxlen = frames.iter().map(Vec::len).max().unwrap_or(64);
            (1u32, 1u32, frames.len() as u32, 0, 0, vec![0u8; maxlen])
        }
    };
    if template.len() > MAX_LIVE_FRAME {
        return Err(GenError::XdpLive(format!(
            "frames of {} bytes are too big for live frames (max {MAX_LIVE_FRAME})",
            template.len()
        )));
    }
    let mut c = Vec::with_capacity(24);
    for v in [mode, nflows, nframes, port_off, port_base, 0] {
        c.extend_from_slice(&v.to_ne_bytes());
    }
    cfg_map
        .update(&0u32.to_ne_bytes(), &c, MapFlags::ANY)
        .map_err(err("writing config"))?;
    let ncpu = libbpf_rs::num_possible_cpus().map_err(err("cpus"))?;
    let frame_bytes = |from: u64, n: u64| -> u64 {
        if let GenSource::Synthetic(_) = source {
            n * template.len() as u64
        } else if n >= frames.len() as u64 * 2 {
            // whole loops plus a remainder: close enough for a rate report
            n * frames.iter().map(|f| f.len() as u64).sum::<u64>() / frames.len() as u64
        } else {
            (from..from + n)
                .map(|k| frames[(k % frames.len() as u64) as usize].len() as u64)
                .sum()
        }
    };

    let mut rep = GenReport::default();
    let mut pacer = Pacer::new(pps);
    let start = Instant::now();
    while rep.sent < total && !stop.load(Ordering::Relaxed) {
        let want = pacer.grant(rep.sent, (total - rep.sent).min(CHUNK), stop);
        if want == 0 {
            break;
        }
        // The sequence counter is per CPU and we may have migrated: set it
        // on every CPU so this chunk continues where the last one stopped.
        let seq: Vec<Vec<u8>> = (0..ncpu).map(|_| rep.sent.to_ne_bytes().to_vec()).collect();
        seq_map
            .update_percpu(&0u32.to_ne_bytes(), &seq, MapFlags::ANY)
            .map_err(err("writing sequence"))?;
        // xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
        // (the kernel wants data = 0, data_end = frame length)
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(template.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let input = ProgramInput {
            data_in: Some(&template),
            context_in: Some(&mut ctx),
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            repeat: want as u32,
            ..Default::default()
        };
        match prog.test_run(input) {
            Ok(_) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(GenError::XdpLive(format!(
                    "test run on ifindex {ifindex}: {e}"
                )))
            }
        }
        // The kernel does not say how far an interrupted run got: read the counter.
        let done = seq_map
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(err("reading sequence"))?
            .unwrap_or_default()
            .iter()
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
            .max()
            .unwrap_or(rep.sent);
        let n = done.saturating_sub(rep.sent).min(want);
        rep.bytes += frame_bytes(rep.sent, n);
        rep.sent += n;
    }
    rep.elapsed = start.elapsed();
    Ok(rep)
}
