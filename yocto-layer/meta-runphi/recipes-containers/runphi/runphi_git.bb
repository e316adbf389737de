SUMMARY = "OCI runtime that runs containers as Jailhouse cells"
DESCRIPTION = "runphi starts containers whose image carries a ZIC \
descriptor as Jailhouse cells and hands every other container to runc \
unchanged. The package holds the runphi, jhctl and cellgen binaries, \
statically linked, the board data and the runtime configuration."
HOMEPAGE = "https://github.com/runphi-go/runphi"
BUGTRACKER = "https://github.com/runphi-go/runphi/issues"
SECTION = "containers"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

PV = "0.1.0+git"

SRC_URI = "git://github.com/runphi-go/runphi.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
# The layer lives in the runphi repository itself and cannot name its own
# commit: pin one with SRCREV:pn-runphi in local.conf for reproducible
# builds.
SRCREV = "${AUTOREV}"

S = "${WORKDIR}/git"

inherit go-mod update-rc.d systemd

GO_IMPORT = "github.com/runphi-go/runphi"
GO_INSTALL = "${GO_IMPORT}/runphi ${GO_IMPORT}/jhctl ${GO_IMPORT}/cellgen"
GO_WORKDIR = "${GO_IMPORT}"

# Pure Go and statically linked: no cgo, and no PIE, which would need the
# dynamic loader.
CGO_ENABLED = "0"
GOBUILDFLAGS:remove = "-buildmode=pie"
GO_LINUXLOADER = ""
GO_EXTRA_LDFLAGS = "-X ${GO_IMPORT}/internal/version.version=${PV}"

# go-mod does not fetch the modules go.sum names; up to scarthgap the
# compile step downloads them itself.
do_compile[network] = "1"

# Board directory under ${datadir}/runphi/boards used by
# ${sysconfdir}/runphi/config.json and the Jailhouse init script.
RUNPHI_BOARD ?= "qemu-arm64"
# containerd2-runphi.toml for containerd 2.x (config version 3),
# containerd-runphi.toml for containerd 1.x (config version 2).
RUNPHI_CONTAINERD_CONFIG ?= "containerd2-runphi.toml"
RUNPHI_SRC = "${S}/src/${GO_IMPORT}"

INITSCRIPT_NAME = "jailhouse"
INITSCRIPT_PARAMS = "defaults 25 75"

SYSTEMD_SERVICE:${PN} = "jailhouse-enable.service"

do_install:append() {
    install -d ${D}${datadir}/runphi/boards
    cp -R --no-dereference --preserve=mode,links ${RUNPHI_SRC}/boards/. \
        ${D}${datadir}/runphi/boards/

    install -D -m 0644 ${RUNPHI_SRC}/packaging/config.json \
        ${D}${sysconfdir}/runphi/config.json
    sed -i 's,/boards/qemu-arm64",/boards/${RUNPHI_BOARD}",' \
        ${D}${sysconfdir}/runphi/config.json

    install -D -m 0644 ${RUNPHI_SRC}/packaging/${RUNPHI_CONTAINERD_CONFIG} \
        ${D}${sysconfdir}/containerd/conf.d/runphi.toml

    install -D -m 0644 ${RUNPHI_SRC}/packaging/jailhouse.default \
        ${D}${sysconfdir}/default/jailhouse
    sed -i 's,/boards/qemu-arm64",/boards/${RUNPHI_BOARD}",' \
        ${D}${sysconfdir}/default/jailhouse

    if ${@bb.utils.contains('DISTRO_FEATURES', 'sysvinit', 'true', 'false', d)}; then
        install -D -m 0755 ${RUNPHI_SRC}/packaging/S25jailhouse \
            ${D}${sysconfdir}/init.d/jailhouse
    fi
    if ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'true', 'false', d)}; then
        install -D -m 0755 ${RUNPHI_SRC}/packaging/S25jailhouse \
            ${D}${libexecdir}/runphi/jailhouse-enable
        install -D -m 0644 ${RUNPHI_SRC}/packaging/jailhouse-enable.service \
            ${D}${systemd_system_unitdir}/jailhouse-enable.service
    fi
}

FILES:${PN} += " \
    ${datadir}/runphi \
    ${libexecdir}/runphi \
"
CONFFILES:${PN} = " \
    ${sysconfdir}/runphi/config.json \
    ${sysconfdir}/containerd/conf.d/runphi.toml \
    ${sysconfdir}/default/jailhouse \
"
