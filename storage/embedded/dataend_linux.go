package embedded

import (
	"os"
	"syscall"
)

// Linux's lseek whence values for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// dataEnd returns the offset after f's last data extent: Badger's logs are
// sparse files sized far beyond what was written, and what follows the
// last extent reads as zeros without being stored.
func dataEnd(f *os.File, size int64) int64 {
	fd := int(f.Fd())
	end := int64(0)
	for off := int64(0); off < size; {
		d, err := syscall.Seek(fd, off, seekData)
		if err != nil {
			if err == syscall.ENXIO {
				return end // no data after off
			}
			return size
		}
		h, err := syscall.Seek(fd, d, seekHole)
		if err != nil {
			return size
		}
		end, off = h, h
	}
	return min(end, size)
}
