/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Broken on purpose: treats a deep run queue as a fatal error. Idle, it behaves; under
 * load it calls scx_bpf_error() and the kernel ejects it. Expected: rejected by the
 * dynamic stage (ejected with the scheduler's own error message).
 */
#include <schedcp/scx.bpf.h>

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define MAX_QUEUED 3

s32 BPF_STRUCT_OPS_SLEEPABLE(eul_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void BPF_STRUCT_OPS(eul_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 queued = scx_bpf_dsq_nr_queued(SHARED_DSQ);

	if (queued > MAX_QUEUED)
		scx_bpf_error("run queue too deep: %d tasks waiting", queued);
	scx_bpf_dsq_insert(p, SHARED_DSQ, SCX_SLICE_DFL, enq_flags);
}

void BPF_STRUCT_OPS(eul_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

SCHEDCP_DEFINE_EXIT(eul)

SEC(".struct_ops.link")
struct sched_ext_ops eul_ops = {
	.enqueue	= (void *)eul_enqueue,
	.dispatch	= (void *)eul_dispatch,
	.init		= (void *)eul_init,
	.exit		= (void *)eul_exit,
	.timeout_ms	= 5000,
	.name		= "broken_error_under_load",
};
