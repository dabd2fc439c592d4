/* Ping-pong between ranks 0 and 1 (any others wait at the final barrier): the one-way latency of a small
 * message and the bandwidth of a large one, the two figures hack/cluster/mpi-bench compares bare and in
 * containers. Prints "latency_us=<f> bandwidth_MBps=<f>" from rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double pingpong(int rank, char *buf, int bytes, int iterations)
{
	double start = 0;
	/* the first tenth warms up connections and caches; it is not timed */
	int warmup = iterations / 10 + 1;
	for (int i = 0; i < warmup + iterations; i++) {
		if (i == warmup) {
			MPI_Barrier(MPI_COMM_WORLD);
			start = MPI_Wtime();
		}
		if (rank == 0) {
			MPI_Send(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
			MPI_Recv(buf, bytes, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else if (rank == 1) {
			MPI_Recv(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Send(buf, bytes, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
		}
	}
	return (MPI_Wtime() - start) / iterations / 2; /* one way */
}

int main(int argc, char **argv)
{
	int rank, size;
	const int small = 8, large = 4 << 20;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size < 2) {
		if (rank == 0)
			fprintf(stderr, "pingpong: needs at least 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	char *buf = calloc(1, large);
	double latency = pingpong(rank, buf, small, 2000);
	double per_large = pingpong(rank, buf, large, 40);
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0)
		printf("latency_us=%.2f bandwidth_MBps=%.1f\n", latency * 1e6, large / per_large / 1e6);
	free(buf);
	MPI_Finalize();
	return 0;
}
