/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: the slice tunable defaults to zero, so every task is preempted the
 * moment it starts. Expected: rejected by the static stage (slice out of bounds).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

const volatile u64 slice_us = 0;

void BPF_STRUCT_OPS(zero_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_us * NSEC_PER_USEC, enq_flags);
}

SCHEDCP_DEFINE_EXIT(zero)

SEC(".struct_ops.link")
struct sched_ext_ops zero_ops = {
	.enqueue	= (void *)zero_enqueue,
	.exit		= (void *)zero_exit,
	.timeout_ms	= 5000,
	.name		= "broken_zero_slice",
};
