include $(sort $(wildcard $(BR2_EXTERNAL_RUNPHI_PATH)/package/*/*.mk))
