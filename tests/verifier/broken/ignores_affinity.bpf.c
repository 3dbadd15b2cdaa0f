/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: spreads tasks over CPUs by pid, ignoring which CPUs each task may
 * run on. A task pinned with taskset lands on a CPU it is not allowed on; the kernel
 * ejects the scheduler. Expected: rejected by the dynamic stage.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(aff_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 target = (u32)p->pid % scx_bpf_nr_cpu_ids();

	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | target, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(aff)

SEC(".struct_ops.link")
struct sched_ext_ops aff_ops = {
	.enqueue	= (void *)aff_enqueue,
	.exit		= (void *)aff_exit,
	.timeout_ms	= 5000,
	.name		= "broken_ignores_affinity",
};
