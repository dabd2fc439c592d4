/* An MPI ring: rank 0 sends a token to rank 1, each rank adds its number and passes it on, and rank 0 prints
 * what came back. With n ranks the token returns as 0+1+...+(n-1), so the output checks that every rank took
 * part. Each rank also prints the communicator size, the host it ran on and its mount namespace: ranks in
 * different containers of one pod share the pod's hostname, but not the mount namespace. */
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rank, size, token;
    char host[MPI_MAX_PROCESSOR_NAME];
    int host_len;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(host, &host_len);
    char mnt[64] = "";
    ssize_t mnt_len = readlink("/proc/self/ns/mnt", mnt, sizeof mnt - 1);
    if (mnt_len > 0)
        mnt[mnt_len] = '\0';
    printf("rank %d of %d on %s in %s\n", rank, size, host, mnt);
    fflush(stdout);
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    if (rank == 0) {
        token = 0;
        MPI_Send(&token, 1, MPI_INT, next, 0, MPI_COMM_WORLD);
        MPI_Recv(&token, 1, MPI_INT, prev, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        printf("ring token %d\n", token);
    } else {
        MPI_Recv(&token, 1, MPI_INT, prev, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        token += rank;
        MPI_Send(&token, 1, MPI_INT, next, 0, MPI_COMM_WORLD);
    }
    MPI_Finalize();
    return 0;
}
