/*
 * init: the finish line of the native PID-1 bench (scripts/bench.sh, part 3),
 * installed as the root image's /sbin/init. Its first act is to read
 * CLOCK_MONOTONIC; then it reports, on one line, that time and what the
 * variant under test left behind, and exits (which ends the PID namespace):
 *
 *	T1=<ns> PID=<pid> ROOT=<fstype of /> RW=<yes|no>
 *
 * ROOT comes from /proc/self/mountinfo (proc is mounted first if the variant
 * left none); RW says whether a file can be created at the root, i.e.
 * whether the writable layer is really there.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* rootfs copies into fs the type of the topmost mount on "/". */
static void rootfs(char *fs, size_t size)
{
	char line[4096], mnt[1024], *sep;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f) {
		mkdir("/proc", 0555);
		mount("proc", "/proc", "proc", 0, NULL);
		f = fopen("/proc/self/mountinfo", "r");
	}
	snprintf(fs, size, "unknown");
	if (!f)
		return;
	/* id parent major:minor root MOUNTPOINT options... - FSTYPE source ... */
	while (fgets(line, sizeof line, f)) {
		sep = strstr(line, " - ");
		if (sep && sscanf(line, "%*s %*s %*s %*s %1023s", mnt) == 1 && strcmp(mnt, "/") == 0)
			sscanf(sep + 3, "%63s", fs);
	}
	fclose(f);
}

int main(void)
{
	struct timespec ts;
	char fs[64];
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	rootfs(fs, sizeof fs);
	fd = open("/.pid1bench-rw", O_WRONLY | O_CREAT, 0644);
	printf("T1=%lld PID=%d ROOT=%s RW=%s\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
	       (int)getpid(), fs, fd >= 0 ? "yes" : "no");
	return 0;
}
