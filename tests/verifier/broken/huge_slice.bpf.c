/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: tasks get an infinite slice, so a CPU hog is never preempted.
 * Expected: rejected by the static stage (slice out of bounds).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(huge_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_INF, enq_flags);
}

SCHEDCP_DEFINE_EXIT(huge)

SEC(".struct_ops.link")
struct sched_ext_ops huge_ops = {
	.enqueue	= (void *)huge_enqueue,
	.exit		= (void *)huge_exit,
	.timeout_ms	= 5000,
	.name		= "broken_huge_slice",
};
