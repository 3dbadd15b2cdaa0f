#include <stdio.h>

int unit1(int), unit2(int), unit3(int), unit4(int), unit5(int), unit6(int), unit7(int),
	unit8(int);

int main(void)
{
	int (*units[])(int) = {unit1, unit2, unit3, unit4, unit5, unit6, unit7, unit8};
	int sum = 0;
	for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		sum += units[i]((int)i);
	printf("%d\n", sum);
	return 0;
}
