package jailhouse

import (
	"fmt"
	"strings"

	"github.com/runphi-go/runphi/cellgen/cell"
)

// checkImages applies the hypervisor's per-image rules (jailhouse-abi.md
// §5.4) so a bad load is explained before the driver says only EINVAL.
func checkImages(cfg *cell.Cell, images []Image) error {
	for i, img := range images {
		if _, err := cfg.CheckLoad(img.Address, uint64(len(img.Data))); err != nil {
			msg := strings.TrimPrefix(err.Error(), cell.ErrLoad.Error()+": ")
			if len(images) > 1 {
				msg = fmt.Sprintf("image %d: %s", i+1, msg)
			}
			return &Error{Op: OpLoad, Cell: "'" + cfg.Name + "'", Kind: ErrImage, Msg: msg}
		}
	}
	return nil
}
