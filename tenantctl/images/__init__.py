"""`tenantctl images build`: every image the platform root and the tenant module deploy, built here.

No registry can be reached on our machines, so nothing is pulled:

| image | from |
| --- | --- |
| base (internal) | Debian bookworm with Python 3.11, built with mmdebstrap from Debian's packages |
| platform | the repository's `Dockerfile` on that base: the gateway and the tenant proxy |
| model-server | `model-server.Dockerfile`: llama.cpp's OpenAI server (the cached llama-cpp-python wheel) with |
|  | SmolLM2-135M-Instruct and all-MiniLM-L6-v2; the CPU stand-in for the vLLM pool and its embedding server |
| prometheus | Prometheus built with Go (scripts/build-toolchain): Debian's package lacks Kubernetes service discovery |
| redis, postgres, alertmanager | Debian's redis-server, postgresql and prometheus-alertmanager on that base (apt), |
|  | with the contract of the official images |

Each image is keyed by a hash of everything it is made of (Dockerfile, build context,
package lists, binaries, models). Its `docker save` archive is cached as
`$LLM_TENANTS_CACHE/images/<name>-<hash>.tar`: a warm run finds every archive and starts
no Docker daemon at all. A missing one is built by our own dockerd (docker_daemon.py),
whose data-root (layer cache) is kept too, so a code change rebuilds in seconds.

The image references are the Terraform variables' values: `terraform_variables()` gives
the platform root's variables that deploy exactly these images. kube-state-metrics and
Grafana cannot be built here (the Go module proxy does not serve kube-state-metrics;
Grafana is not a Go module we can build offline): the platform root disables them by variable.

    build.py          ensure_images, planned, terraform_variables
    recipes.py        what each image is: reference, content, how it is built, what it builds on
    context.py        build contexts: exactly the files an image is made of
    rootfs.py         root file systems: Debian's (mmdebstrap), Prometheus's
    builder.py        building in a Docker daemon; which content an image there was built from
    cache.py          the archives, keyed by content; digests; build times
    docker_daemon.py  our own dockerd, started for one job and always stopped
    oci_archive.py    OCI archives written without a container engine (the local node's own images)
"""
