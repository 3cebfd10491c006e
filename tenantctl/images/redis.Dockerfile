# Debian's redis-server with the official redis image's contract: `redis-server` takes the
# container's arguments, data in /data, uid 999. Built by `tenantctl images build` on its Debian base.
ARG BASE
FROM ${BASE}
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d && mkdir -p /data
WORKDIR /data
USER 999
EXPOSE 6379
ENTRYPOINT ["/usr/bin/redis-server"]
