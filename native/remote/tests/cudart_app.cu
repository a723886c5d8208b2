/*
 * cudart_app.cu: a CUDA runtime-API program, unmodified, as nvcc builds it (-cudart shared or
 * static): cudart_app.sh runs it through the remote client against a worker on the fake
 * driver. The runtime reaches the driver through cuGetProcAddress and the export tables
 * (client_export.c); its fatbin is loaded as a library before any context exists; its
 * <<<>>> launches pass kernelParams, packed by layouts read from the cubin (client_kparams.c).
 * The fake runs no kernel code: "sleep" takes its first parameter as its run time in
 * microseconds, so the events around it show the parameter arrived; the fake's launch log
 * shows which kernels ran with how many blocks. With the argument "gpu" (a real GPU, natively
 * or through the client: scripts/gpu-check-remote.sh) the kernels run: scale's results are
 * checked instead, and the sleep kernel's time is not. Prints "cudart_app ok" when every
 * check held.
 */
#include <cstdio>
#include <cstring>

extern "C" __global__ void sleep(unsigned long long micros) {}
__global__ void scale(float *x, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
struct three { char c[3]; };
/* Parameters of every alignment: the packed buffer must put each where the cubin says. */
__global__ void mixed(char a, double b, short c, three d, int *e, float f) {}

static int failures;

static void call_at(int line, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return;
    printf("cudart_app: FAIL line %d: %s -> %d %s\n", line, what, (int)e, cudaGetErrorName(e));
    failures++;
}
static void expect_at(int line, bool ok, const char *what) {
    if (ok) return;
    printf("cudart_app: FAIL line %d: %s\n", line, what);
    failures++;
}
#define CHECK(call) call_at(__LINE__, (call), #call)
#define EXPECT(cond) expect_at(__LINE__, (cond), #cond)

int main(int argc, char **argv) {
    const bool gpu = argc > 1 && strcmp(argv[1], "gpu") == 0;
    int count = 0, runtime = 0, driver = 0;
    CHECK(cudaRuntimeGetVersion(&runtime));
    CHECK(cudaDriverGetVersion(&driver));
    CHECK(cudaGetDeviceCount(&count));
    EXPECT(count == 1);
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    CHECK(cudaSetDevice(0));

    const int n = 1 << 16;
    static float host[n], back[n];
    for (int i = 0; i < n; i++) host[i] = (float)i * 0.5f;
    float *dev = nullptr;
    CHECK(cudaMalloc(&dev, n * sizeof(float)));
    CHECK(cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice));
    scale<<<(n + 255) / 256, 256>>>(dev, 2.0f, n);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(back, dev, n * sizeof(float), cudaMemcpyDeviceToHost));
    if (gpu) {
        int wrong = 0;
        for (int i = 0; i < n; i++) wrong += back[i] != host[i] * 2.0f;
        EXPECT(wrong == 0);
    } else {
        EXPECT(memcmp(host, back, sizeof host) == 0); /* the fake ran no code: the bytes came back as sent */
    }
    /* cudaMemcpyDefault: the direction from the addresses (unified addressing). */
    float *dev2 = nullptr;
    CHECK(cudaMalloc(&dev2, n * sizeof(float)));
    CHECK(cudaMemcpy(dev2, back, n * sizeof(float), cudaMemcpyDefault));
    CHECK(cudaMemcpy(dev, dev2, n * sizeof(float), cudaMemcpyDefault));
    static float again[n];
    CHECK(cudaMemcpy(again, dev, n * sizeof(float), cudaMemcpyDefault));
    EXPECT(memcmp(again, back, sizeof back) == 0);
    CHECK(cudaFree(dev2));
    CHECK(cudaMemset(dev, 0x7f, 4096));
    unsigned char bytes[4096];
    CHECK(cudaMemcpy(bytes, dev, sizeof bytes, cudaMemcpyDeviceToHost));
    EXPECT(bytes[0] == 0x7f && bytes[4095] == 0x7f);

    /* Streams and events: a sleep of 50 ms between two events on a stream of its own. */
    cudaStream_t stream;
    cudaEvent_t start, stop;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    CHECK(cudaMemcpyAsync(dev, host, 4096, cudaMemcpyHostToDevice, stream));
    CHECK(cudaEventRecord(start, stream));
    sleep<<<1, 1, 0, stream>>>(50000ull);
    CHECK(cudaEventRecord(stop, stream));
    CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    EXPECT(gpu ? ms >= 0.0f : ms >= 45.0f && ms < 5000.0f); /* the fake sleeps the parameter's time */
    CHECK(cudaStreamSynchronize(stream));
    EXPECT(cudaStreamQuery(stream) == cudaSuccess);

    three t = {{1, 2, 3}};
    mixed<<<2, 32, 0, stream>>>('a', 1.5, 7, t, (int *)dev, 2.5f);
    CHECK(cudaGetLastError());
    CHECK(cudaStreamSynchronize(stream));

    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaStreamDestroy(stream));
    CHECK(cudaFree(dev));
    if (failures) {
        printf("cudart_app: %d failures\n", failures);
        return 1;
    }
    printf("cudart_app ok: runtime %d, driver %d, %s, event-timed sleep %.1f ms%s\n", runtime, driver, prop.name, ms,
           gpu ? ", kernel results checked" : "");
    return 0;
}
