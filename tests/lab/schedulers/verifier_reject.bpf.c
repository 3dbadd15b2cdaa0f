/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Deliberately broken: compiles, but dereferences a map lookup without the NULL check,
 * which the kernel verifier must refuse at load time.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, s32);
	__type(value, u64);
} enqueues SEC(".maps");

void BPF_STRUCT_OPS(reject_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 pid = p->pid;
	u64 *n = bpf_map_lookup_elem(&enqueues, &pid);

	*n += 1;	/* no NULL check */
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(reject)

SEC(".struct_ops.link")
struct sched_ext_ops reject_ops = {
	.enqueue	= (void *)reject_enqueue,
	.exit		= (void *)reject_exit,
	.timeout_ms	= 5000,
	.name		= "schedcp_reject",
};
