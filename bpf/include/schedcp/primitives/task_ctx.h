/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-task storage: one value of the policy's own type attached to each task.
 *
 *   struct task_ctx { struct schedcp_runtime rt; bool is_long; };
 *   SCHEDCP_TASK_CTX(struct task_ctx)
 *
 * defines the map and two getters: task_ctx_create(p) (call it from ops.init_task, where
 * allocation may happen) and task_ctx(p) (every other op; NULL if the task has none).
 * The kernel frees the value with the task, so exit_task needs no clean-up.
 */
#pragma once

#include <schedcp/scx.bpf.h>

#ifndef ENOMEM
#define ENOMEM 12
#endif

#define SCHEDCP_TASK_CTX(ctx_type)						\
	struct {								\
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);			\
		__uint(map_flags, BPF_F_NO_PREALLOC);				\
		__type(key, int);						\
		__type(value, ctx_type);					\
	} schedcp_task_ctx SEC(".maps");					\
										\
	static __always_inline ctx_type *task_ctx(struct task_struct *p)	\
	{									\
		return bpf_task_storage_get(&schedcp_task_ctx, p, 0, 0);	\
	}									\
										\
	static __always_inline ctx_type *task_ctx_create(struct task_struct *p)	\
	{									\
		return bpf_task_storage_get(&schedcp_task_ctx, p, 0,		\
					    BPF_LOCAL_STORAGE_GET_F_CREATE);	\
	}
