/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table6[256];

static void fill6(int seed)
{
	for (int k = 0; k < 256; k++)
		table6[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp6(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit6(int seed)
{
	char buf[64];
	fill6(seed);
	qsort(table6, 256, sizeof(int), cmp6);
	snprintf(buf, sizeof(buf), "%d", table6[128]);
	return (int)strlen(buf) + table6[0] % 7;
}
