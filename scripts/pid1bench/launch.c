/*
 * launch: the starting line of the native PID-1 bench (scripts/bench.sh,
 * part 3). Run as PID 1 of a fresh PID and mount namespace, it chroots into
 * ROOT, reads CLOCK_MONOTONIC, prints it as "T0=<ns>" and execs PROG with
 * the rest of the arguments, as the kernel execs init=PROG. The clock is
 * system-wide, so T0 compares with the T1 that the root's /sbin/init prints.
 *
 *	launch ROOT PROG [ARG...]
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec ts;
	char line[64];
	int n;

	if (argc < 3) {
		fprintf(stderr, "usage: launch ROOT PROG [ARG...]\n");
		return 2;
	}
	if (chroot(argv[1]) != 0 || chdir("/") != 0) {
		perror("launch: chroot");
		return 111;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof line, "T0=%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (write(1, line, n) != n)
		return 111;
	execv(argv[2], argv + 2);
	perror("launch: exec");
	return 127;
}
