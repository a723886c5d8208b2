/* gsnext2.c: the "next" definition gsnext1's dlsym(RTLD_NEXT) must find. */
int gsnext_value(void) { return 2; }
