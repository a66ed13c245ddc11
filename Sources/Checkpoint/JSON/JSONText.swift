import Foundation

/// Readable messages for JSON parse failures of headers and indexes.
enum JSONText {
    /// A readable message for a Foundation JSON-parsing or file-reading error.
    static func describe(_ error: Error) -> String {
        let nsError = error as NSError
        return nsError.userInfo[NSDebugDescriptionErrorKey] as? String ?? nsError.localizedDescription
    }
}
