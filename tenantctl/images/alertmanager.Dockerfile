# Debian's Alertmanager (prometheus-alertmanager 0.25, the version local mode runs) with the official
# image's contract: `alertmanager` takes the container's arguments, data in /alertmanager, user nobody.
# Built by `tenantctl images build` on its Debian base.
ARG BASE
FROM ${BASE}
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /etc/prometheus/alertmanager.yml \
 && ln -s /usr/bin/prometheus-alertmanager /usr/local/bin/alertmanager \
 && mkdir -p /alertmanager && chown 65534:65534 /alertmanager
WORKDIR /alertmanager
USER 65534
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
