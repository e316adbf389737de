package celllinux

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// arm64 Image header fields (Documentation/arch/arm64/booting.rst).
const (
	imageHeaderSize   = 64
	textOffsetOffset  = 8
	imageMagicOffset  = 56
	imageMagic        = "ARM\x64"
	gzipMagic         = "\x1f\x8b"
	maxKernelFallback = 1 << 32 // decompression bound when the cell has no RAM
)

// decodeKernel returns the kernel Image, gunzipping it if it is gzip data.
// limit bounds the decompressed size: a kernel larger than the largest RAM
// region cannot be placed anyway, and the bound stops a gzip bomb.
func decodeKernel(kernel []byte, limit uint64) (img []byte, gz bool, err error) {
	if !bytes.HasPrefix(kernel, []byte(gzipMagic)) {
		return kernel, false, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(kernel))
	if err != nil {
		return nil, true, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	if limit == 0 {
		limit = maxKernelFallback
	}
	img, err = io.ReadAll(io.LimitReader(zr, int64(min(limit, 1<<62))+1))
	if err != nil {
		return nil, true, fmt.Errorf("gunzip: %w", err)
	}
	if uint64(len(img)) > limit {
		return nil, true, fmt.Errorf("%w: the decompressed kernel is larger than any RAM region (%#x bytes)",
			ErrNoSpace, limit)
	}
	return img, true, nil
}

// textOffset checks the arm64 Image magic and returns text_offset.
func textOffset(img []byte) (uint64, error) {
	if len(img) < imageHeaderSize {
		return 0, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrBadKernel, len(img), imageHeaderSize)
	}
	if string(img[imageMagicOffset:imageMagicOffset+4]) != imageMagic {
		return 0, fmt.Errorf("%w: bad magic %q at offset %d", ErrBadKernel, img[imageMagicOffset:imageMagicOffset+4], imageMagicOffset)
	}
	return binary.LittleEndian.Uint64(img[textOffsetOffset:]), nil
}
