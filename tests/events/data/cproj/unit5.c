/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table5[256];

static void fill5(int seed)
{
	for (int k = 0; k < 256; k++)
		table5[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp5(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit5(int seed)
{
	char buf[64];
	fill5(seed);
	qsort(table5, 256, sizeof(int), cmp5);
	snprintf(buf, sizeof(buf), "%d", table5[128]);
	return (int)strlen(buf) + table5[0] % 7;
}
