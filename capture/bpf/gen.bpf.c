// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flowtap traffic generator, run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES: every repetition turns the frame into the next
 * packet of the sequence and sends it with XDP_TX out of the interface given
 * as ingress_ifindex.
 *
 * mode 0 (synthetic): the frame given as data_in is a template; the 16-bit
 *   big-endian field at `port_off` (UDP/TCP source port) is set to
 *   port_base + (n % nflows), so the frames form `nflows` distinct flows.
 * mode 1 (replay): frame n % nframes is copied from the `gen_frames` map.
 *
 * Layout of `struct gen_cfg` / `struct gen_frame` is mirrored in capture/src/gen/xdp.rs.
 */
#include "include/flowtap_min.h"
#include <bpf/bpf_helpers.h>

#define GEN_MAX_FRAME 2048
#define GEN_MAX_FRAMES 4096

struct gen_cfg {
	__u32 mode;
	__u32 nflows;
	__u32 nframes;
	__u32 port_off;
	__u32 port_base;
	__u32 _pad;
};

struct gen_frame {
	__u32 len;
	__u8 data[GEN_MAX_FRAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_MAX_FRAMES);
	__type(key, __u32);
	__type(value, struct gen_frame);
} gen_frames SEC(".maps");

/* Per-CPU sequence number (test runs are pinned to the calling CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

SEC("xdp")
int flowtap_gen(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &zero);
	__u64 *seq = bpf_map_lookup_elem(&gen_seq, &zero);
	__u64 n;

	if (!cfg || !seq)
		return XDP_ABORTED;
	n = *seq;
	*seq = n + 1;

	if (cfg->mode == 0) {
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		__u32 off = cfg->port_off;
		__u32 nflows = cfg->nflows ? cfg->nflows : 1;
		__u16 port = (__u16)(cfg->port_base + (__u32)(n % nflows));
		__u8 *f;
		if (off > 256)
			return XDP_ABORTED;
		f = data + off;
		if ((void *)(f + 2) > end)
			return XDP_ABORTED;
		f[0] = port >> 8;
		f[1] = port & 0xff;
		return XDP_TX;
	} else {
		__u32 nframes = cfg->nframes ? cfg->nframes : 1;
		__u32 idx = (__u32)(n % nframes);
		struct gen_frame *fr = bpf_map_lookup_elem(&gen_frames, &idx);
		void *data = (void *)(long)ctx->data;
		void *end = (void *)(long)ctx->data_end;
		__u32 len;
		int cur;
		if (!fr)
			return XDP_ABORTED;
		len = fr->len;
		if (len < 14 || len > GEN_MAX_FRAME)
			return XDP_ABORTED;
		cur = (int)(end - data);
		if (bpf_xdp_adjust_tail(ctx, (int)len - cur))
			return XDP_ABORTED;
		if (bpf_xdp_store_bytes(ctx, 0, fr->data, len))
			return XDP_ABORTED;
		return XDP_TX;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
