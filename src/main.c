#include <stdio.h>
int main(void) { puts("metarelay"); return 0; }
