/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: asks for a 60 s watchdog, twice the kernel's ceiling, so a stall
 * would go unnoticed for a minute. Expected: rejected by the static stage (timeout_ms).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(nowd_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(nowd)

SEC(".struct_ops.link")
struct sched_ext_ops nowd_ops = {
	.enqueue	= (void *)nowd_enqueue,
	.exit		= (void *)nowd_exit,
	.timeout_ms	= 60000,
	.name		= "broken_no_watchdog",
};
