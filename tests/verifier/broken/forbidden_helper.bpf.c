/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: prints every enqueue to the trace pipe with bpf_printk, a debugging
 * helper that floods the trace buffer in production. Expected: rejected by the static
 * stage (helper not on the allowlist).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(noisy_enqueue, struct task_struct *p, u64 enq_flags)
{
	bpf_printk("enqueue %d", p->pid);
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(noisy)

SEC(".struct_ops.link")
struct sched_ext_ops noisy_ops = {
	.enqueue	= (void *)noisy_enqueue,
	.exit		= (void *)noisy_exit,
	.timeout_ms	= 5000,
	.name		= "broken_forbidden_helper",
};
