-- Which API formats a site's relay speaks (comma-separated subset of chat,messages,responses);
-- NULL means the platform's default.
ALTER TABLE sites ADD COLUMN formats TEXT;
