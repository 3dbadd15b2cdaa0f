/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table8[256];

static void fill8(int seed)
{
	for (int k = 0; k < 256; k++)
		table8[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp8(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit8(int seed)
{
	char buf[64];
	fill8(seed);
	qsort(table8, 256, sizeof(int), cmp8);
	snprintf(buf, sizeof(buf), "%d", table8[128]);
	return (int)strlen(buf) + table8[0] % 7;
}
