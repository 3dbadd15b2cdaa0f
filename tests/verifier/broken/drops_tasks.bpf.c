/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: enqueue forgets tasks that were woken up (SCX_ENQ_WAKEUP), so a
 * task that sleeps once is never seen again. Expected: rejected by the static stage
 * (enqueue can return without inserting the task).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

void BPF_STRUCT_OPS(drop_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (enq_flags & SCX_ENQ_WAKEUP)
		return;
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SCHEDCP_DEFINE_EXIT(drop)

SEC(".struct_ops.link")
struct sched_ext_ops drop_ops = {
	.enqueue	= (void *)drop_enqueue,
	.exit		= (void *)drop_exit,
	.timeout_ms	= 5000,
	.name		= "broken_drops_tasks",
};
