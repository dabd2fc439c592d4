/* An MPI check whose answer is known in advance: a token goes round the ring of ranks ROUNDS times, each rank
 * adding its rank number, then an allreduce sums the ranks. Rank 0 prints one line the tests compare with
 * the expected values; any mismatch is a non-zero exit. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

#define ROUNDS 3

int main(int argc, char **argv)
{
	int rank, size;
	char host[256] = "";

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	gethostname(host, sizeof(host) - 1);

	long token = 0;
	int next = (rank + 1) % size, prev = (rank + size - 1) % size;
	for (int round = 0; round < ROUNDS; round++) {
		if (rank == 0) {
			token += rank;
			MPI_Send(&token, 1, MPI_LONG, next, 0, MPI_COMM_WORLD);
			MPI_Recv(&token, 1, MPI_LONG, prev, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		} else {
			MPI_Recv(&token, 1, MPI_LONG, prev, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			token += rank;
			MPI_Send(&token, 1, MPI_LONG, next, 0, MPI_COMM_WORLD);
		}
	}
	long rank_sum = 0, mine = rank;
	MPI_Allreduce(&mine, &rank_sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

	/* Every rank names its host, so a run across nodes shows where the ranks were. */
	char hosts[64][256];
	MPI_Gather(host, 256, MPI_CHAR, rank == 0 ? hosts : NULL, 256, MPI_CHAR, 0, MPI_COMM_WORLD);

	long expected = (long)ROUNDS * size * (size - 1) / 2;
	/* Only rank 0 holds the token after the last round; it decides for everyone. */
	int ok = token == expected && rank_sum == (long)size * (size - 1) / 2;
	MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		printf("ring size=%d token=%ld expected=%ld allreduce=%ld hosts=", size, token, expected, rank_sum);
		for (int i = 0; i < size && i < 64; i++)
			printf("%s%s", i ? "," : "", hosts[i]);
		printf(" %s\n", ok ? "ok" : "WRONG");
	}
	MPI_Finalize();
	return ok ? 0 : 1;
}
