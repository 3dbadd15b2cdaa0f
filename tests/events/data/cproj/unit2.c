/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table2[256];

static void fill2(int seed)
{
	for (int k = 0; k < 256; k++)
		table2[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp2(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit2(int seed)
{
	char buf[64];
	fill2(seed);
	qsort(table2, 256, sizeof(int), cmp2);
	snprintf(buf, sizeof(buf), "%d", table2[128]);
	return (int)strlen(buf) + table2[0] % 7;
}
