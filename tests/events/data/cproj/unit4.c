/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table4[256];

static void fill4(int seed)
{
	for (int k = 0; k < 256; k++)
		table4[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp4(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit4(int seed)
{
	char buf[64];
	fill4(seed);
	qsort(table4, 256, sizeof(int), cmp4);
	snprintf(buf, sizeof(buf), "%d", table4[128]);
	return (int)strlen(buf) + table4[0] % 7;
}
