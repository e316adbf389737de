################################################################################
#
# runphi
#
################################################################################

RUNPHI_VERSION = 0.1.0
ifeq ($(BR2_PACKAGE_RUNPHI_LOCAL_SOURCE),y)
RUNPHI_SITE = $(BR2_EXTERNAL_RUNPHI_PATH)/..
RUNPHI_SITE_METHOD = local
else
RUNPHI_SITE = $(call github,runphi-go,runphi,v$(RUNPHI_VERSION))
endif
RUNPHI_LICENSE = Apache-2.0
RUNPHI_LICENSE_FILES = LICENSE

RUNPHI_GOMOD = github.com/runphi-go/runphi
RUNPHI_BUILD_TARGETS = runphi jhctl cellgen
# Pure Go: static binaries that need no C library on the target.
RUNPHI_GO_ENV = CGO_ENABLED=0
RUNPHI_LDFLAGS = -X $(RUNPHI_GOMOD)/internal/version.version=$(RUNPHI_VERSION)

RUNPHI_BOARD = $(call qstrip,$(BR2_PACKAGE_RUNPHI_BOARD))

ifeq ($(BR2_PACKAGE_RUNPHI_LOCAL_SOURCE),y)
# The download step, which vendors the Go modules, does not run for a
# local source.
define RUNPHI_CHECK_VENDOR
	@if [ ! -f $(@D)/vendor/modules.txt ]; then \
		echo "runphi: no vendor/ in $(RUNPHI_SITE); run 'go mod vendor' there" >&2; \
		exit 1; \
	fi
endef
RUNPHI_POST_RSYNC_HOOKS += RUNPHI_CHECK_VENDOR
endif

define RUNPHI_INSTALL_DATA
	$(INSTALL) -d -m 0755 $(TARGET_DIR)/usr/share/runphi/boards
	cp -dpfr $(@D)/boards/. $(TARGET_DIR)/usr/share/runphi/boards/
	$(INSTALL) -D -m 0644 $(@D)/packaging/config.json \
		$(TARGET_DIR)/etc/runphi/config.json
	$(SED) 's,/boards/qemu-arm64",/boards/$(RUNPHI_BOARD)",' \
		$(TARGET_DIR)/etc/runphi/config.json
endef
RUNPHI_POST_INSTALL_TARGET_HOOKS += RUNPHI_INSTALL_DATA

ifeq ($(BR2_PACKAGE_CONTAINERD),y)
# Buildroot's containerd is 2.x: its config version 3 merges this file
# into config.toml when that imports /etc/containerd/conf.d/*.toml.
define RUNPHI_INSTALL_CONTAINERD_CONFIG
	$(INSTALL) -D -m 0644 $(@D)/packaging/containerd2-runphi.toml \
		$(TARGET_DIR)/etc/containerd/conf.d/runphi.toml
endef
RUNPHI_POST_INSTALL_TARGET_HOOKS += RUNPHI_INSTALL_CONTAINERD_CONFIG
endif

ifeq ($(BR2_PACKAGE_RUNPHI_JAILHOUSE_ENABLE),y)
define RUNPHI_INSTALL_JAILHOUSE_DEFAULT
	$(INSTALL) -D -m 0644 $(@D)/packaging/jailhouse.default \
		$(TARGET_DIR)/etc/default/jailhouse
	$(SED) 's,/boards/qemu-arm64",/boards/$(RUNPHI_BOARD)",' \
		$(TARGET_DIR)/etc/default/jailhouse
endef

define RUNPHI_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/packaging/S25jailhouse \
		$(TARGET_DIR)/etc/init.d/S25jailhouse
	$(RUNPHI_INSTALL_JAILHOUSE_DEFAULT)
endef

define RUNPHI_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0755 $(@D)/packaging/S25jailhouse \
		$(TARGET_DIR)/usr/libexec/runphi/jailhouse-enable
	$(INSTALL) -D -m 0644 $(@D)/packaging/jailhouse-enable.service \
		$(TARGET_DIR)/usr/lib/systemd/system/jailhouse-enable.service
	$(RUNPHI_INSTALL_JAILHOUSE_DEFAULT)
endef
endif

$(eval $(golang-package))
