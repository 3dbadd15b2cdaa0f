/* A unit of a small real C project: enough code that compiling it takes a moment. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int table7[256];

static void fill7(int seed)
{
	for (int k = 0; k < 256; k++)
		table7[k] = (seed * 1103515245 + k * 12345) & 0x7fffffff;
}

static int cmp7(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int unit7(int seed)
{
	char buf[64];
	fill7(seed);
	qsort(table7, 256, sizeof(int), cmp7);
	snprintf(buf, sizeof(buf), "%d", table7[128]);
	return (int)strlen(buf) + table7[0] % 7;
}
