/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table1[256];

static void fill1(int seed)
{
	for (int k = 0; k < 256; k++)
		table1[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp1(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit1(int seed)
{
	char buf[64];
	fill1(seed);
	qsort(table1, 256, sizeof(int), cmp1);
	snprintf(buf, sizeof(buf), "%d", table1[128]);
	return (int)strlen(buf) + table1[0] % 7;
}
