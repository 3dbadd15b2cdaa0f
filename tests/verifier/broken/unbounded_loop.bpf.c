/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: dispatch drains its queue in a loop whose bound is only known at
 * run time. Expected: rejected by the static stage (loop without a compile-time bound).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

s32 BPF_STRUCT_OPS_SLEEPABLE(loop_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void BPF_STRUCT_OPS(loop_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert(p, SHARED_DSQ, SCX_SLICE_DFL, enq_flags);
}

void BPF_STRUCT_OPS(loop_dispatch, s32 cpu, struct task_struct *prev)
{
	s32 queued = scx_bpf_dsq_nr_queued(SHARED_DSQ);

	while (queued > 0) {
		if (!scx_bpf_dsq_move_to_local(SHARED_DSQ))
			break;
		queued = scx_bpf_dsq_nr_queued(SHARED_DSQ);
	}
}

SCHEDCP_DEFINE_EXIT(loop)

SEC(".struct_ops.link")
struct sched_ext_ops loop_ops = {
	.enqueue	= (void *)loop_enqueue,
	.dispatch	= (void *)loop_dispatch,
	.init		= (void *)loop_init,
	.exit		= (void *)loop_exit,
	.timeout_ms	= 5000,
	.name		= "broken_unbounded_loop",
};
