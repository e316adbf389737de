SUMMARY = "runphi and the container stack it plugs into"
DESCRIPTION = "runphi registered as a containerd runtime handler, with \
containerd and runc from meta-virtualization. Jailhouse itself (driver, \
firmware and tools) is recommended; it comes from a BSP layer such as \
meta-ti or from your own recipe."
HOMEPAGE = "https://github.com/runphi-go/runphi"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = " \
    runphi \
    virtual-containerd \
    virtual-runc \
"
RRECOMMENDS:${PN} = " \
    jailhouse \
"
