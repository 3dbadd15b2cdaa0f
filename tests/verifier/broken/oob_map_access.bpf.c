/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: counts enqueues per CPU in a fixed array indexed by the task's CPU
 * without a bounds check. Nothing static is wrong; the kernel verifier must refuse the
 * out-of-bounds access. Expected: rejected by the kernel stage.
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

#define MAX_CPUS 4

u64 enqueues[MAX_CPUS];

void BPF_STRUCT_OPS(oob_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);

	enqueues[cpu]++;	/* cpu may be >= MAX_CPUS */
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(oob)

SEC(".struct_ops.link")
struct sched_ext_ops oob_ops = {
	.enqueue	= (void *)oob_enqueue,
	.exit		= (void *)oob_exit,
	.timeout_ms	= 5000,
	.name		= "broken_oob_map_access",
};
