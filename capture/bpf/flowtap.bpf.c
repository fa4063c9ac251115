// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flowtap capture program: optional pre-filter (VLAN, CIDR, IP protocol,
 * L4 port), then redirect to the AF_XDP socket bound to this RX queue.
 *
 * Layout of `struct ft_rules` is mirrored in capture/src/afxdp/filter.rs.
 */
#include "include/flowtap_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FT_F_VLAN (1u << 0)
#define FT_F_CIDR4 (1u << 1)
#define FT_F_CIDR6 (1u << 2)
#define FT_F_PROTO (1u << 3)
#define FT_F_PORT (1u << 4)
#define FT_F_DROP_UNBOUND (1u << 8)
#define FT_F_ANY_FILTER (FT_F_VLAN | FT_F_CIDR4 | FT_F_CIDR6 | FT_F_PROTO | FT_F_PORT)

enum ft_reason {
	FT_R_VLAN = 0,
	FT_R_CIDR = 1,
	FT_R_PROTO = 2,
	FT_R_PORT = 3,
	FT_R_UNBOUND = 4, /* no socket on this queue (passed or dropped per flag) */
	FT_R_MAX = 8,
};

struct ft_rules {
	__u32 flags;
	__u32 _pad;
	__u64 proto[4];    /* bitmap of IP protocol numbers */
	__u64 vlan[64];    /* bitmap of VLAN ids */
	__u64 port[1024];  /* bitmap of L4 ports (src or dst) */
};

struct lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} ft_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ft_rules);
} ft_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4);
	__type(value, __u8);
} ft_cidr4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6);
	__type(value, __u8);
} ft_cidr6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FT_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ft_drops SEC(".maps");

struct ft_eth {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

struct ft_vlan {
	__be16 tci;
	__be16 proto;
};

struct ft_ip4 {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u8 saddr[4];
	__u8 daddr[4];
};

struct ft_ip6 {
	__be32 vtc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline void ft_count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&ft_drops, &reason);
	if (c)
		*c += 1;
}

static __always_inline int bit_set(const __u64 *bm, __u32 idx)
{
	return (bm[idx >> 6] >> (idx & 63)) & 1;
}

/* Returns a drop reason, or -1 to keep the frame. */
static __always_inline int ft_check(const struct ft_rules *r, void *data, void *end)
{
	struct ft_eth *eth = data;
	void *p;
	__u16 proto;
	__u8 l4 = 0;
	void *l4p = 0;
	int frag = 0;

	if ((void *)(eth + 1) > end)
		return -1;
	proto = bpf_ntohs(eth->proto);
	p = eth + 1;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
			struct ft_vlan *v = p;
			if ((void *)(v + 1) > end)
				return -1;
			if (r->flags & FT_F_VLAN) {
				__u32 vid = bpf_ntohs(v->tci) & 0x0fff;
				if (bit_set(r->vlan, vid))
					return FT_R_VLAN;
			}
			proto = bpf_ntohs(v->proto);
			p = v + 1;
		}
	}

	if (proto == ETH_P_IP) {
		struct ft_ip4 *ip = p;
		__u32 ihl;
		if ((void *)(ip + 1) > end)
			return -1;
		if (r->flags & FT_F_CIDR4) {
			struct lpm4 k = { .prefixlen = 32 };
			__builtin_memcpy(k.addr, ip->saddr, 4);
			if (bpf_map_lookup_elem(&ft_cidr4, &k))
				return FT_R_CIDR;
			__builtin_memcpy(k.addr, ip->daddr, 4);
			if (bpf_map_lookup_elem(&ft_cidr4, &k))
				return FT_R_CIDR;
		}
		l4 = ip->protocol;
		ihl = (ip->ver_ihl & 0x0f) * 4;
		if (ihl < 20)
			return -1;
		l4p = p + ihl;
		frag = (bpf_ntohs(ip->frag_off) & 0x1fff) != 0;
	} else if (proto == ETH_P_IPV6) {
		struct ft_ip6 *ip6 = p;
		if ((void *)(ip6 + 1) > end)
			return -1;
		if (r->flags & FT_F_CIDR6) {
			struct lpm6 k = { .prefixlen = 128 };
			__builtin_memcpy(k.addr, ip6->saddr, 16);
			if (bpf_map_lookup_elem(&ft_cidr6, &k))
				return FT_R_CIDR;
			__builtin_memcpy(k.addr, ip6->daddr, 16);
			if (bpf_map_lookup_elem(&ft_cidr6, &k))
				return FT_R_CIDR;
		}
		l4 = ip6->nexthdr;
		l4p = ip6 + 1;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			if (l4 == IPPROTO_HOPOPTS || l4 == IPPROTO_ROUTING || l4 == IPPROTO_DSTOPTS) {
				__u8 *e = l4p;
				if ((void *)(e + 2) > end)
					return -1;
				l4 = e[0];
				l4p = e + ((__u32)e[1] + 1) * 8;
			} else if (l4 == IPPROTO_FRAGMENT) {
				__u8 *e = l4p;
				if ((void *)(e + 8) > end)
					return -1;
				l4 = e[0];
				frag = ((((__u32)e[2] << 8) | e[3]) & 0xfff8) != 0;
				l4p = e + 8;
			}
		}
	} else {
		return -1;
	}

	if ((r->flags & FT_F_PROTO) && bit_set(r->proto, l4))
		return FT_R_PROTO;

	if ((r->flags & FT_F_PORT) && !frag &&
	    (l4 == IPPROTO_TCP || l4 == IPPROTO_UDP || l4 == IPPROTO_SCTP)) {
		__be16 *ports = l4p;
		if ((void *)(ports + 2) > end)
			return -1;
		if (bit_set(r->port, bpf_ntohs(ports[0])) || bit_set(r->port, bpf_ntohs(ports[1])))
			return FT_R_PORT;
	}
	return -1;
}

SEC("xdp")
int flowtap_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 fallback = XDP_PASS;
	long act;

	struct ft_rules *r = bpf_map_lookup_elem(&ft_rules, &zero);
	if (r) {
		if (r->flags & FT_F_ANY_FILTER) {
			int reason = ft_check(r, data, end);
			if (reason >= 0) {
				ft_count(reason);
				return XDP_DROP;
			}
		}
		if (r->flags & FT_F_DROP_UNBOUND)
			fallback = XDP_DROP;
	}

	act = bpf_redirect_map(&ft_xsks, ctx->rx_queue_index, fallback);
	if (act != XDP_REDIRECT)
		ft_count(FT_R_UNBOUND);
	return act;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
