package reconcile

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// DeleteSnapshots removes every snapshot of a connection, inside tx; it is
// called when the connection itself is deleted.
func DeleteSnapshots(tx *gorm.DB, connectionID string) error {
	if err := tx.Where("connection_id = ?", connectionID).Delete(&models.Snapshot{}).Error; err != nil {
		return fmt.Errorf("delete snapshots of %s: %w", connectionID, err)
	}
	return nil
}
