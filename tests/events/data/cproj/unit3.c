/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table3[256];

static void fill3(int seed)
{
	for (int k = 0; k < 256; k++)
		table3[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp3(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit3(int seed)
{
	char buf[64];
	fill3(seed);
	qsort(table3, 256, sizeof(int), cmp3);
	snprintf(buf, sizeof(buf), "%d", table3[128]);
	return (int)strlen(buf) + table3[0] % 7;
}
